"""``driftloop serve``: uvicorn with one worker or several, supervised with care.

Three things make several workers start reliably on a busy machine:

- Each worker is a fresh (spawned) interpreter that first re-imports the parent's
  ``__main__`` (for the console script: :mod:`driftloop.cli`) and only then starts answering
  the supervisor's health checks. The CLI imports nothing heavy at module level (no scipy,
  scikit-learn or pandas), and the app factory (:mod:`driftloop.serving.asgi`) loads the app
  only once the worker answers.
- The health-check timeout is a setting (``workers_start_timeout``, 60 s), not uvicorn's 5 s:
  under load a worker that is merely slow was killed and replaced forever.
- When a worker dies, the log says why: its exit code or signal, or that it stopped
  answering the health check.

Every worker receives the settings the parent validated, as one JSON blob.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from driftloop.config import RESOLVED_ENV

if TYPE_CHECKING:
    from driftloop.config import Settings

logger = logging.getLogger("uvicorn.error")

APP = "driftloop.serving.asgi:create"
#: uvicorn's httptools protocol with a header timeout (slow clients are cut off).
HTTP = "driftloop.serving.limits:HttpToolsWithHeaderTimeout"


def run_server(settings: Settings, *, host: str, port: int, workers: int,
               log_level: str) -> int:
    """Serve until stopped; returns the process exit code."""
    os.environ[RESOLVED_ENV] = settings.to_blob()
    if workers > 1:
        # Prometheus multiprocess mode: every worker writes here, /metrics sums them. A
        # fresh folder per server start, as prometheus_client requires.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="driftloop-metrics-")
    config = uvicorn.Config(APP, factory=True, host=host, port=port, workers=workers,
                            log_level=log_level, http=HTTP,
                            timeout_worker_healthcheck=settings.workers_start_timeout)
    if workers == 1:
        server = uvicorn.Server(config)
        server.run()
        return 0 if server.started else STARTUP_FAILURE
    supervisor = Supervisor(config, sockets=[config.bind_socket()])
    supervisor.run()
    return supervisor.exit_code


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor, saying why a worker is replaced.

    Overrides only :meth:`keep_subprocess_alive`, which in uvicorn logs a bare
    "Child process [N] died" whether the worker crashed, was killed by a signal or merely
    missed a health check."""

    exit_code = 0

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        timeout = self.config.timeout_worker_healthcheck
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=timeout):
                continue
            running = process.process.is_alive()
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                logger.error("worker [%s] failed to start (its error is above); stopping",
                             process.pid)
                self.exit_code = STARTUP_FAILURE
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.error("worker [%s] %s; starting a new one", process.pid,
                         _why(running, process.exitcode, timeout))
            replacement = Process(self.config, self.sockets)
            replacement.start()
            self.processes[index] = replacement


def _why(was_running: bool, exitcode: int | None, timeout: float) -> str:
    if was_running:
        return (f"did not answer the health check within {timeout} s and was killed "
                "(a very busy machine? raise the workers_start_timeout setting)")
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {exitcode}"

