"""The prediction log's health, for ``/api/state`` and ``/metrics``: the writer's backlog,
quarantine and failures, the journal, and the log's size as retention last counted it."""

from __future__ import annotations

from typing import Any, Literal

from driftloop.data.retention import Retention
from driftloop.serving.service import ModelService


def log_state(service: ModelService, retention: Retention) -> dict[str, Any]:
    """The prediction log's health: the writer's counters, journal and retention."""
    writer, journal = service.monitor.writer, service.monitor.journal
    state: dict[str, Any] = writer.state() if writer is not None else {"enabled": False}
    state["durability"] = service.settings.log_durability if journal is not None else "buffered"
    state["journal_unsaved"] = journal.unsaved if journal is not None else 0
    state["rows"] = retention.rows
    state["pruned"] = retention.pruned
    return state


class LogMetrics:
    """Prometheus gauges of the prediction log: size, backlog, quarantine, stuck time."""

    def __init__(self, service: ModelService, retention: Retention) -> None:
        self.service, self.retention = service, retention
        self._gauges: dict[str, Any] | None = None

    def update(self) -> None:
        metrics = self.service.publisher.metrics
        if metrics is None:
            return
        if self._gauges is None:
            from prometheus_client import Gauge  # noqa: PLC0415 - with the metrics

            def gauge(name: str, doc: str, mode: Literal["livemax", "livesum"]) -> Any:
                return Gauge(name, doc, ["model"], registry=metrics.registry,
                             multiprocess_mode=mode).labels(self.service.name)

            self._gauges = {
                "rows": gauge("driftloop_prediction_log_rows",
                              "Rows in the prediction log, as counted at the last prune.",
                              "livemax"),
                "pending": gauge("driftloop_prediction_log_pending",
                                 "Predictions buffered and not yet in the log.", "livesum"),
                "quarantined": gauge("driftloop_prediction_log_quarantined",
                                     "Predictions that could not be stored and were written "
                                     "to the quarantine file (since the process started).",
                                     "livesum"),
                "stuck": gauge("driftloop_prediction_log_stuck_seconds",
                               "How long writes to the prediction log have been failing "
                               "(0: they succeed).", "livemax"),
            }
        writer = self.service.monitor.writer
        self._gauges["rows"].set(self.retention.rows if self.retention.rows is not None
                                 else float("nan"))
        if writer is not None:
            self._gauges["pending"].set(writer.pending)
            self._gauges["quarantined"].set(writer.quarantined)
            self._gauges["stuck"].set(writer.stuck_for)
