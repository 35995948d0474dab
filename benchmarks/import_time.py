"""Import time of the CLI and the registry, measured with ``python -X importtime``.

Every ``driftloop serve`` worker re-imports the CLI before it can answer its supervisor's
health check, so what ``driftloop --help`` imports is paid once per worker start. The
peers, run side by side in one run, interleaved: ``sqlalchemy`` (the registry's floor) and,
with ``--old SRC``, another checkout's sources (e.g. a git worktree of an earlier release).

    python benchmarks/import_time.py --rounds 5 --old /tmp/driftloop-old/src
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("scipy", "sklearn", "pandas", "numpy", "sqlalchemy", "fastapi")
CASES = {
    "driftloop --help": "from driftloop.cli import main\ntry:\n    main(['--help'])\n"
                        "except SystemExit:\n    pass",
    "import driftloop.registry": "import driftloop.registry",
    "import sqlalchemy": "import sqlalchemy",
}


def measure(code: str, src: Path) -> tuple[float, list[str]]:
    """Milliseconds of imports (the sum of -X importtime's top-level entries) and the
    heavy packages the code loaded."""
    probe = (f"{code}\nimport sys\n"
             f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(src)}
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", probe],
                            capture_output=True, text=True, check=True, env=env)
    total = 0
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if (line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit()
                and not parts[2].startswith("  ")):
            total += int(parts[1])
    heavy = result.stdout.rpartition("HEAVY:")[2].strip()
    return total / 1000, [m for m in heavy.split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--old", type=Path, help="another checkout's src/ to compare with")
    args = parser.parse_args()
    trees = {"this tree": SRC, **({"old": args.old} if args.old else {})}
    times: dict[tuple[str, str], list[float]] = {}
    heavy: dict[tuple[str, str], list[str]] = {}
    for _ in range(args.rounds):  # interleaved, so load changes hit every case alike
        for case, code in CASES.items():
            for tree, src in trees.items():
                if case == "import sqlalchemy" and tree != "this tree":
                    continue
                ms, loaded = measure(code, src)
                times.setdefault((case, tree), []).append(ms)
                heavy[(case, tree)] = loaded
    floor = statistics.median(times[("import sqlalchemy", "this tree")])
    load = os.getloadavg()[0]
    print(f"import time, median of {args.rounds} (load average {load:.1f})")
    print(f"{'case':28} {'tree':10} {'ms':>8} {'x sqlalchemy':>13}  heavy modules loaded")
    for (case, tree), values in times.items():
        ms = statistics.median(values)
        print(f"{case:28} {tree:10} {ms:8.0f} {ms / floor:13.2f}  "
              f"{', '.join(heavy[(case, tree)]) or '-'}")


if __name__ == "__main__":
    main()
