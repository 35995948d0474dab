"""Thread limits reach the native pools (OpenMP, OpenBLAS) of a child process and of this
one: an oversubscribed OpenMP pool made training 10-40x slower on a busy machine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from driftloop.threads import thread_environment

PROBE = """
import json, sys
import numpy, sklearn.ensemble  # loads OpenBLAS and OpenMP
from threadpoolctl import threadpool_info
if len(sys.argv) > 1:
    from driftloop.threads import limit_threads
    limit_threads(int(sys.argv[1]))
print(json.dumps({p["user_api"]: p["num_threads"] for p in threadpool_info()}))
"""


def _pools(*args: str, env: dict[str, str] | None = None) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                         check=True, env=env).stdout
    return dict(json.loads(out))


@pytest.mark.parametrize("threads", [1, 2])
def test_a_child_started_with_the_thread_environment_keeps_to_it(threads: int) -> None:
    pools = _pools(env=thread_environment(threads))
    assert pools and set(pools) >= {"openmp"}
    assert all(n == threads for n in pools.values()), pools


def test_limit_threads_applies_to_pools_already_loaded() -> None:
    pools = _pools("1")
    assert pools and all(n == 1 for n in pools.values()), pools
