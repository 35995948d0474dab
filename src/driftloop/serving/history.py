"""The dashboard's memory: what a client connecting late (or after a restart) is told.

A dashboard opened mid-run must show the same story as one that watched from the start:
the drift evaluations that led to an alarm, the alarm itself (even after the promotion
that answered it), the traffic split over time and the request rate. One process's
memory cannot tell it — with several workers each serves its own share of the clients,
and a restart forgets — so the story lives in the database (``db.feed_history``):

- :class:`FeedHistory` stores points per model and kind, pruned to the newest
  :data:`KEEP` rows of each kind, and reads them back oldest first.
- :class:`FeedRecorder` writes them from the process that evaluates drift (the only
  process, or the drift leader among several workers), following its event bus: every
  drift evaluation (and the newest full report) and alarm, each change of the traffic
  split, and a metrics point every :data:`METRICS_EVERY_S` seconds. Metrics points are
  *that process's* view (its request rate and latencies); with several workers the other
  workers' traffic is not in them.

Writes are best effort: a database hiccup loses a point of history (logged), never a
request or an alarm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from driftloop import db
from driftloop.events import Event, EventBus
from driftloop.serving.drift_sync import _json_safe

logger = logging.getLogger(__name__)

#: Rows kept per model and kind: a few hours of panes, alarms and splits; an hour of
#: metrics points at one per METRICS_EVERY_S; the newest full report (histograms included),
#: which a visitor still sees after a promotion reset the detector and before its first
#: evaluation against the new reference, as a client that watched throughout does.
KEEP: Mapping[str, int] = {"drift": 500, "alarm": 100, "traffic": 500, "metrics": 720,
                           "report": 1}
METRICS_EVERY_S = 5.0
RECORDER_BUFFER = 4096


class FeedHistory:
    """The bounded, per-model history of the dashboard's feed in ``feed_history``."""

    def __init__(self, engine: Engine, model_name: str,
                 keep: Mapping[str, int] = KEEP) -> None:
        self.engine = engine
        self.model_name = model_name
        self.keep = dict(keep)

    def record(self, kind: str, data: Mapping[str, Any], at: float) -> None:
        """Append one point of ``kind`` (a key of ``keep``) and drop the oldest beyond the
        bound, in one transaction. ``at`` is epoch seconds."""
        self.record_all([(kind, data, at)])

    def record_all(self, points: Sequence[tuple[str, Mapping[str, Any], float]]) -> None:
        """:meth:`record` each ``(kind, data, at)``, all in one transaction: all of them
        are stored or none (an evaluation's drift point and its full report)."""
        for kind, _, _ in points:
            if kind not in self.keep:
                raise ValueError(f"unknown history kind {kind!r}: one of {sorted(self.keep)}")
        table = db.feed_history
        with db.transaction(self.engine) as conn:
            for kind, data, at in points:
                mine = sa.and_(table.c.model_name == self.model_name, table.c.kind == kind)
                # The id of the newest row outside the bound (NULL while within it).
                cutoff = (sa.select(table.c.id).where(mine).order_by(table.c.id.desc())
                          .offset(self.keep[kind]).limit(1).scalar_subquery())
                conn.execute(table.insert().values(
                    model_name=self.model_name, kind=kind,
                    at=datetime.fromtimestamp(at, tz=UTC), data=_json_safe(dict(data))))
                conn.execute(table.delete().where(mine, table.c.id <= cutoff))

    def read(self) -> dict[str, list[dict[str, Any]]]:
        """Every kind's points, oldest first (each kind present, possibly empty)."""
        table = db.feed_history
        query = (sa.select(table.c.kind, table.c.data)
                 .where(table.c.model_name == self.model_name).order_by(table.c.id))
        history: dict[str, list[dict[str, Any]]] = {kind: [] for kind in self.keep}
        with self.engine.connect() as conn:
            for kind, data in conn.execute(query):
                if kind in history:
                    history[kind].append(dict(data))
        return history

    def newest(self, kind: str) -> dict[str, Any] | None:
        """The newest point of ``kind``, or None."""
        table = db.feed_history
        query = (sa.select(table.c.data)
                 .where(table.c.model_name == self.model_name, table.c.kind == kind)
                 .order_by(table.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            data = conn.execute(query).scalar()
        return None if data is None else dict(data)


class FeedRecorder:
    """Follows the event bus and records the feed's history while ``leads()`` is true.

    Only the process that evaluates drift records, so there is one writer per model: its
    drift reports and alarms are the fleet's, and a follower's copies (read back from the
    leader's report) would be duplicates.
    """

    def __init__(self, history: FeedHistory, bus: EventBus, leads: Callable[[], bool]) -> None:
        self.history = history
        self.bus = bus
        self.leads = leads
        self._metrics_at = float("-inf")
        self._drift_pane: int | None = None  # the newest pane a leader's report recorded
        self._drift_pane_read = False

    async def run(self) -> None:
        subscription = self.bus.subscribe(RECORDER_BUFFER)
        try:
            while True:
                event = await subscription.get()
                if subscription.take_lagged():
                    logger.warning("the dashboard history fell behind the event bus: some "
                                   "points were not recorded")
                try:
                    await self._record(event)
                except Exception:  # a database hiccup costs a point, not the recorder
                    logger.exception("recording the dashboard history failed")
        finally:
            subscription.close()

    async def _record(self, event: Event) -> None:
        if event.topic not in ("drift", "alarm", "traffic", "metrics") or not self.leads():
            return
        data = event.data
        if event.topic == "drift":
            if not await self._new_evaluation(data):
                return
            point = drift_point(data)
            at = point["at"] or event.at
            # One transaction: a shutdown between two writes left a drift point without
            # its report, and a restarted server then showed the report before it.
            await asyncio.to_thread(self.history.record_all,
                                    [("drift", point, at), ("report", data, at)])
        elif event.topic == "alarm":
            await asyncio.to_thread(self.history.record, "alarm", alarm(data),
                                    data["detected_at"])
        elif event.topic == "traffic":
            await asyncio.to_thread(self.history.record, "traffic", data["point"],
                                    data["point"]["at"])
        elif data["at"] - self._metrics_at >= METRICS_EVERY_S:
            self._metrics_at = data["at"]
            await asyncio.to_thread(self.history.record, "metrics", data, data["at"])

    async def _new_evaluation(self, report: Mapping[str, Any]) -> bool:
        """Whether ``report`` is an evaluation not recorded yet. A single process publishes
        each evaluation once; a leader's merged report names the pane it evaluated, and a
        new leader must not record again the pane its predecessor did."""
        pane = report.get("evaluated_pane_id")
        if pane is None:
            return "evaluated_pane_id" not in report  # a leader's report before any evaluation
        if not self._drift_pane_read:
            newest = await asyncio.to_thread(self.history.newest, "drift")
            self._drift_pane = newest["pane_id"] if newest else None
            self._drift_pane_read = True
        if self._drift_pane is not None and pane <= self._drift_pane:
            return False
        self._drift_pane = pane
        return True


def drift_point(report: Mapping[str, Any]) -> dict[str, Any]:
    """A ``DriftPoint`` (serving/schemas.py) of a report: the per-feature statistics the
    charts draw, not the histograms. A leader's merged report is the evaluation of
    ``evaluated_pane_id``."""
    def stats(f: Mapping[str, Any]) -> dict[str, Any]:
        return {"psi": f.get("psi"), "js": f.get("js_distance"),
                "ks": f.get("ks_statistic"), "drifted": f.get("drifted", False)}

    output = report.get("output")
    pane = report.get("evaluated_pane_id", report.get("pane_id"))
    return {"at": report.get("evaluated_at"), "pane_id": pane,
            "drift_share": report.get("drift_share"), "drifted": report.get("drifted"),
            "features": {name: stats(f) for name, f in report.get("features", {}).items()},
            "output": stats(output) if output else None}


def alarm(event: Mapping[str, Any]) -> dict[str, Any]:
    """An ``Alarm`` (serving/schemas.py): a DriftEvent's dict without its full report."""
    return {k: v for k, v in event.items() if k != "report"}
