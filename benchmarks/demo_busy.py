"""`driftloop demo --until promoted` on a quiet and on a busy machine, side by side.

A user's machine is rarely idle: this runs the demo with 0 and with 2 CPU-burning processes
beside it (``python -c 'while True: pass'``), alternating, and prints the seconds from the
concept shift to the drift alarm and to the promotion, with the training step's time.

    python benchmarks/demo_busy.py --rounds 2 --speed 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

EXE = Path(sys.executable).with_name("driftloop")


def run_demo(burners: int, speed: float, max_seconds: float) -> dict[str, Any]:
    spinning = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(burners)]
    try:
        with tempfile.TemporaryDirectory() as folder:
            result = subprocess.run(
                [str(EXE), "demo", "--headless", "--until", "promoted", "--port", "0",
                 "--speed", str(speed), "--max-seconds", str(max_seconds), "--data-dir",
                 folder], capture_output=True, text=True, check=False)
            [summary] = Path(folder).glob("demo/*/summary.json")
            return {**json.loads(summary.read_text()), "exit": result.returncode}
    finally:
        for process in spinning:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--speed", type=float, default=5.0)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    runs: dict[int, list[dict[str, Any]]] = {0: [], 2: []}
    for _ in range(args.rounds):
        for burners, results in runs.items():
            results.append(run_demo(burners, args.speed, args.max_seconds))
    print(f"driftloop demo --until promoted --speed {args.speed:g}, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.1f}")
    print(f"{'burners':>7} {'promoted':>9} {'shift→alarm s':>14} {'shift→promotion s':>18} "
          f"{'training s':>11}")
    for burners, results in runs.items():
        def median(key: str, rows: list[dict[str, Any]] = results) -> str:
            values = [r[key] for r in rows if r.get(key) is not None]
            return f"{statistics.median(values):.1f}" if values else "-"

        training = [r["stages"].get("TRAINING") for r in results if r.get("stages")]
        promoted = sum(r["promoted_event"] is not None for r in results)
        print(f"{burners:>7} {promoted:>5}/{len(results):<3} "
              f"{median('seconds_shift_to_alarm'):>14} "
              f"{median('seconds_shift_to_promotion'):>18} "
              f"{statistics.median([t for t in training if t]) if any(training) else '-':>11}")


if __name__ == "__main__":
    main()
