"""A PostgreSQL LISTEN on the registry's channel, so followers wake at once on a change.

Polling the generation counter (≤ 0.5 s) is what guarantees convergence; this only makes
it faster. It runs on its own thread with a dedicated connection (LISTEN needs a session
that stays open) and reconnects with backoff when the connection drops.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import Engine

from driftloop.registry.registry import NOTIFY_CHANNEL

logger = logging.getLogger(__name__)


class RegistryListener:
    """Calls ``on_change()`` whenever the registry announces a change to ``model_name``."""

    def __init__(self, engine: Engine, model_name: str, on_change: Callable[[], object],
                 *, max_backoff: float = 5.0) -> None:
        self.dsn = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        self.model_name = model_name
        self.on_change = on_change
        self.max_backoff = max_backoff
        self.notifications = 0
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="registry-listener",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.connections += 1
                    backoff = 0.1
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            if notify.payload == self.model_name:
                                self.notifications += 1
                                self.on_change()
            except psycopg.Error as exc:
                logger.warning("registry listener lost its connection (%s); retrying", exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
