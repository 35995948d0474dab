"""The dashboard's history in the database: bounded per model and kind, read back in order,
written once per evaluation by whichever process leads."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
import sqlalchemy as sa

from driftloop import db
from driftloop.events import EventBus
from driftloop.serving.history import FeedHistory, FeedRecorder


def test_each_kind_keeps_its_newest_rows_per_model(db_url: str) -> None:
    engine = db.create_engine(db_url)
    keep = {"drift": 3, "alarm": 2, "traffic": 2, "metrics": 2, "report": 1}
    mine, other = FeedHistory(engine, "a", keep), FeedHistory(engine, "b", keep)
    for i in range(7):
        mine.record("drift", {"pane_id": i, "psi": math.inf if i == 6 else 0.1}, 1000.0 + i)
        other.record("drift", {"pane_id": 100 + i}, 1000.0 + i)
    mine.record("alarm", {"id": "x"}, 1000.0)
    history = mine.read()
    assert [p["pane_id"] for p in history["drift"]] == [4, 5, 6]
    assert history["drift"][-1]["psi"] is None  # JSON has no infinity
    assert history["alarm"] == [{"id": "x"}]
    assert history["traffic"] == history["metrics"] == history["report"] == []
    assert [p["pane_id"] for p in other.read()["drift"]] == [104, 105, 106]
    assert mine.newest("drift") == {"pane_id": 6, "psi": None}
    with engine.connect() as conn:
        rows = len(conn.execute(db.feed_history.select()).all())
    assert rows == 3 + 1 + 3
    with pytest.raises(ValueError, match="unknown history kind 'nope'"):
        mine.record("nope", {}, 0.0)
    engine.dispose()


def test_an_evaluations_point_and_report_are_stored_together_or_not_at_all(
        db_url: str) -> None:
    """The recorder writes an evaluation's drift point and its report in one transaction:
    a restarted server must never find the point without its report."""
    engine = db.create_engine(db_url)
    history = FeedHistory(engine, "a")
    with pytest.raises((TypeError, sa.exc.StatementError), match="not JSON serializable"):
        history.record_all([("drift", {"pane_id": 1}, 1000.0),
                            ("report", {"unstorable": object()}, 1000.0)])
    assert history.newest("drift") is None and history.newest("report") is None
    history.record_all([("drift", {"pane_id": 1}, 1000.0), ("report", {"pane_id": 1}, 1000.0)])
    assert history.newest("drift") == history.newest("report") == {"pane_id": 1}
    engine.dispose()


def _leader_report(evaluated: int | None, at: float) -> dict[str, Any]:
    feature = {"psi": 0.5, "js_distance": 0.2, "ks_statistic": 0.3, "drifted": True}
    return {"evaluated_pane_id": evaluated, "pane_id": (evaluated or 0) + 1, "evaluated_at": at,
            "drift_share": 1.0, "drifted": True, "features": {"x": feature}, "output": None}


async def _feed(history: FeedHistory, leads: bool, events: list[tuple[str, Any]]) -> None:
    bus = EventBus()
    recorder = FeedRecorder(history, bus, lambda: leads)
    task = asyncio.create_task(recorder.run())
    await asyncio.sleep(0)  # subscribed
    for topic, data in events:
        bus.publish(topic, data)
    for _ in range(200):  # until the recorder has taken every event
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_a_leader_records_each_evaluated_pane_once_across_a_failover(db_url: str) -> None:
    """With several workers every hub republishes the leader's merged report; only the
    leader records it, once per evaluated pane, and a new leader does not record again
    the pane its predecessor did."""
    engine = db.create_engine(db_url)
    history = FeedHistory(engine, "m")
    metrics = [("metrics", {"at": 100.0 + s, "requests_per_s": 1.0}) for s in range(12)]
    asyncio.run(_feed(history, False, [("drift", _leader_report(1, 10.0)), *metrics]))
    assert not any(history.read().values())
    asyncio.run(_feed(history, True, [("drift", _leader_report(None, 9.0)),
                                      ("drift", _leader_report(1, 10.0)),
                                      ("drift", _leader_report(1, 11.0)), *metrics]))
    asyncio.run(_feed(history, True, [("drift", _leader_report(1, 12.0)),  # the new leader
                                      ("drift", _leader_report(2, 13.0))]))
    recorded = history.read()
    assert [(p["pane_id"], p["at"]) for p in recorded["drift"]] == [(1, 10.0), (2, 13.0)]
    assert recorded["drift"][0]["features"] == {
        "x": {"psi": 0.5, "js": 0.2, "ks": 0.3, "drifted": True}}
    # one metrics point per 5 s of the 12 seconds: at 100, 105 and 110
    assert [p["at"] for p in recorded["metrics"]] == [100.0, 105.0, 110.0]
    assert recorded["report"] == [_leader_report(2, 13.0)]  # the newest full report
    engine.dispose()
