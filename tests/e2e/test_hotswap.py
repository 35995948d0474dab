"""Promotions and rollbacks under load, in the suite: benchmarks/hotswap_bench.py run short.

Two real uvicorn workers serve closed-loop clients while an admin thread promotes and
rolls back over HTTP. Not a timing test — the convergence goal is set loose (3 s, the
swaps are 2.3 s apart) so a loaded CI machine passes; the 1 s figure is measured by the
benchmark itself. What must hold here: no request fails during the swaps, every admin
answer names the expected champion, and every swap converges before the next one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks" / "hotswap_bench.py"


@pytest.mark.slow
def test_no_request_fails_and_every_worker_converges_during_swaps_under_load(
    tmp_path: Path,
) -> None:
    out = tmp_path / "hotswap.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--seconds", "10", "--swaps", "4", "--concurrency", "8",
         "--goal-ms", "3000", "--json", str(out)],
        capture_output=True, text=True, timeout=240, check=False)
    assert out.exists(), proc.stdout + proc.stderr
    outcome = json.loads(out.read_text())["outcome"]
    assert outcome["failed"] == 0, proc.stdout
    assert outcome["requests"] > 100, proc.stdout
    assert outcome["swaps_pass"], proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
