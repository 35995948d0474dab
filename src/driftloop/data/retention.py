"""Retention: the prediction log is pruned by age and by row count, on by default.

At ~590 bytes a row, a server answering 220 requests a second writes ~11 GB a day; a log
that is never pruned fills the disk. :class:`Retention` runs :meth:`PredictionLog.prune`
on its own thread every ``interval`` seconds (and once at start), keeping rows younger
than ``max_age_days`` and at most the newest ``max_rows``, and counts the rows left
(``rows``, the ``driftloop_prediction_log_rows`` metric). Either bound may be None (off).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from driftloop.data.predictions import PredictionLog

logger = logging.getLogger(__name__)


class Retention:
    """Prunes ``log`` periodically on a daemon thread."""

    def __init__(self, log: PredictionLog, *, max_age_days: float | None,
                 max_rows: int | None, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"retention_interval: must be > 0, got {interval!r}")
        self.log = log
        self.max_age = None if max_age_days is None else timedelta(days=max_age_days)
        self.max_rows = max_rows
        self.interval = interval
        self.rows: int | None = None  # counted after the last prune
        self.pruned = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Prune now; return the rows deleted."""
        deleted = 0
        if self.max_age is not None or self.max_rows is not None:
            deleted = self.log.prune(max_age=self.max_age, max_rows=self.max_rows)
        self.pruned += deleted
        self.rows = self.log.count()
        if deleted:
            logger.info("retention pruned %d predictions; %d remain", deleted, self.rows)
        return deleted

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="driftloop-retention",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception as exc:  # a database hiccup: try again next time
                logger.warning("pruning the prediction log failed: %s", exc)
            if self._stop.wait(self.interval):
                return
