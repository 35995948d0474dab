"""Several workers on a busy machine: `driftloop serve --workers 4` beside two CPU-burning
processes. Each worker re-imports the CLI before it can answer its supervisor's health
check; with a heavy CLI import and uvicorn's 5 s timeout, workers were killed and replaced
forever ("Child process [N] died") and nothing listened."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from tests.e2e.processes import cpu_burners, start_server

from driftloop.config import Settings

WORKERS = 4
DEADLINE_S = 60.0


@pytest.mark.slow
def test_every_worker_answers_within_a_minute_beside_two_cpu_burners(
        served_settings: Settings) -> None:
    with cpu_burners(2):
        started = time.monotonic()
        proc, url = start_server(served_settings, WORKERS)
        try:
            pids: set[int] = set()
            while len(pids) < WORKERS and time.monotonic() - started < DEADLINE_S:
                # A new connection each time, so the kernel hands it to any worker.
                with httpx.Client(base_url=url, timeout=10) as client:
                    response = client.get("/api/state")
                assert response.status_code == 200, response.text
                pids.add(response.json()["worker"]["pid"])
            elapsed = time.monotonic() - started
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    log = next(Path(served_settings.data_dir).glob("server-*.log")).read_text()
    assert len(pids) == WORKERS, f"{len(pids)} of {WORKERS} workers answered in {elapsed:.0f} s"
    assert "died" not in log and "did not answer" not in log, log
