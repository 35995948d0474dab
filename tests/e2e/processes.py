"""Starting real `driftloop serve` processes for the end-to-end tests."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from driftloop.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(settings: Settings, workers: int, *, admin_token: str | None = "s3cret",
                 env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """``driftloop serve`` for ``settings``' data folder and model; ``env`` adds settings."""
    port = free_port()
    exe = Path(sys.executable).with_name("driftloop")
    env = {**os.environ, "DRIFTLOOP_MAX_WAIT_MS": "0.5", "DRIFTLOOP_DRIFT_WINDOW": "200",
           **(env or {})}
    if workers > 1:
        env["DRIFTLOOP_PANE_SECONDS"] = "1"
    log = Path(settings.data_dir) / f"server-{port}.log"  # a file: a full pipe would block it
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [str(exe), "serve", "--data-dir", str(settings.data_dir),
             "--model", settings.model_name, "--port", str(port), "--workers", str(workers),
             "--log-level", "warning",
             *(["--admin-token", admin_token] if admin_token else [])],
            env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).json()["status"] == "ok":
                return proc, url
        except (httpx.HTTPError, ValueError, KeyError):
            time.sleep(0.2)
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"server did not start: {log.read_text()}")


#: Held while burners run: with the suite shared between pytest-xdist processes, two
#: busy-machine tests would otherwise burn four cores' worth on a two-core machine at once.
BURNERS_LOCK = Path(tempfile.gettempdir()) / "driftloop-tests-cpu-burners.lock"


@contextlib.contextmanager
def cpu_burners(count: int = 2) -> Iterator[None]:
    """``count`` processes spinning on a core each, as a user's busy machine has: what the
    busy-machine tests run beside. One such test at a time, across test processes."""
    with BURNERS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                   for _ in range(count)]
        try:
            yield
        finally:
            for burner in burners:
                burner.kill()
                burner.wait()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """``predicate()``'s first truthy value, polled every 0.2 s for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
