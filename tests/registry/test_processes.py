"""The registry across real processes: concurrent writers, and SIGKILL at random moments."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.registry.helpers import assert_consistent, small_model

from driftloop.registry import ModelRegistry

WORKER = Path(__file__).with_name("worker.py")


def spawn(url: str, artifacts: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(WORKER), url, str(artifacts), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_pushes_from_separate_processes_get_distinct_versions(db_url: str, tmp_path: Path) -> None:
    procs = [spawn(db_url, tmp_path, "push", "4") for _ in range(3)]
    versions = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        versions += [int(line) for line in out.split()]
    assert sorted(versions) == list(range(1, 13))
    assert_consistent(ModelRegistry.open(db_url, artifacts=tmp_path), "m")


def test_promotions_from_separate_processes_exactly_one_wins(db_url: str, tmp_path: Path) -> None:
    reg = ModelRegistry.open(db_url, artifacts=tmp_path)
    for seed in range(3):
        reg.push_candidate("m", small_model(seed))
    seen = str(reg.generation("m"))
    procs = [spawn(db_url, tmp_path, "promote", str(v), seen) for v in (1, 2, 3)]
    outcomes = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert outcomes == ["lost", "lost", "won"]
    assert_consistent(reg, "m")


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_the_registry_consistent(
    db_url: str, tmp_path: Path
) -> None:
    rng = random.Random(7)
    reg = ModelRegistry.open(db_url, artifacts=tmp_path)
    for _ in range(4):
        proc = spawn(db_url, tmp_path, "churn")
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert_consistent(reg, "m")
    # What the kills left behind (temporary or unreferenced folders) is collected, and
    # nothing a row references is touched.
    reg.collect_garbage(older_than=0.0)
    leftovers = {p.relative_to(tmp_path).as_posix() for p in (tmp_path / "models").glob("*/*")}
    assert leftovers == {v.artifact_path for v in reg.list_versions("m")}
    # Still fully usable: a new version can be pushed, promoted and loaded.
    v = reg.push_candidate("m", small_model(99))
    reg.promote_candidate("m", v.version)
    assert reg.load("m", v.version).predict([[0.0, 0.0, 0.0]]).shape == (1,)
    assert_consistent(reg, "m")
