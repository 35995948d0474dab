"""Drift over all workers' traffic: shipped windows, one elected leader, failover."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from tests.drift.helpers import with_version

from driftloop import db
from driftloop.drift import DriftDetector, DriftEvent, DriftPolicy, codec
from driftloop.drift.dispersion import MIN_HISTORY
from driftloop.serving import schemas
from driftloop.serving.drift_sync import (
    DriftLeader,
    WindowShipper,
    advisory_lock_key,
    read_newer_format_workers,
    read_report,
)

rng = np.random.default_rng(11)
REFERENCE = pd.DataFrame({
    "age": rng.normal(40, 10, 3000),
    "income": rng.lognormal(10, 1, 3000),
    "plan": rng.choice(["free", "pro", "team"], 3000),
})
PANE = 10.0


class Clock:
    """A hand-set clock shared by detectors, shippers and leaders in one test."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def detector(clock: Callable[[], float], reference: pd.DataFrame = REFERENCE) -> DriftDetector:
    return DriftDetector.from_reference(reference, pane_seconds=PANE, panes=2, clock=clock,
                                        policy=DriftPolicy(consecutive=2))


def traffic(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rows = REFERENCE.sample(n, replace=True, random_state=seed).reset_index(drop=True)
    return rows.assign(age=rows["age"] + shift)


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = db.create_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def model() -> str:
    return f"model-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_leader(engine: Engine, model: str) -> Iterator[Callable[..., DriftLeader]]:
    """Leaders for ``model``, all released at the end (a held PostgreSQL session would
    outlive the test otherwise)."""
    made: list[DriftLeader] = []

    def make(leader_id: str, base: DriftDetector, **kw: Any) -> DriftLeader:
        leader = DriftLeader(kw.pop("engine", engine), kw.pop("model", model), leader_id,
                             base, **kw)
        made.append(leader)
        return leader

    yield make
    for leader in made:
        leader.release()


class Fleet:
    """Three workers splitting one stream at random, and one detector fed all of it."""

    def __init__(self, engine: Engine, model: str, clock: Clock) -> None:
        self.clock = clock
        self.single = detector(clock)
        self.workers = [detector(clock) for _ in range(3)]
        self.shippers = [WindowShipper(engine, model, f"w{k}", w, clock=clock)
                         for k, w in enumerate(self.workers)]
        self.split = np.random.default_rng(3)
        self.single_events: list[DriftEvent] = []

    def pane(self, pane_id: int, shift: float = 0.0) -> None:
        """Feed one pane of traffic, then move the clock past its end and ship."""
        for sub in range(3):
            batch = traffic(240, seed=100 * pane_id + sub, shift=shift)
            at = pane_id * PANE + 1 + 3 * sub
            self.single_events += self.single.observe(batch, timestamp=at)
            owner = self.split.integers(0, 3, size=len(batch))
            for k, worker in enumerate(self.workers):
                share = batch[owner == k]
                if len(share):
                    worker.observe(share, timestamp=at)
        self.clock.now = (pane_id + 1) * PANE + 0.5
        self.single_events += self.single.tick()
        for shipper in self.shippers:
            shipper.ship()


def test_merged_report_equals_one_detector_fed_the_whole_stream(
    engine: Engine, model: str, make_leader: Callable[..., DriftLeader]
) -> None:
    clock = Clock()
    fleet = Fleet(engine, model, clock)
    leader = make_leader("L", detector(clock), clock=clock)
    assert leader.try_lead()
    for pane_id in range(4):
        fleet.pane(pane_id, shift=3.0 * (pane_id >= 2))
        leader.step()
        expected = fleet.single.report()
        assert leader.detector.report() == expected  # exact: same integers, same floats
        stored = read_report(engine, model)
        assert stored is not None
        assert stored["features"] == as_json(expected.to_dict()["features"])
        for key in ("window_size", "window_fill", "pane_id", "drifted", "drifted_features"):
            assert stored[key] == as_json(expected.to_dict()[key]), key
        assert stored["workers"] == 3 and stored["leader_id"] == "L"
        assert stored["evaluated_pane_id"] == pane_id
    assert leader.detector.events_seen == fleet.single.events_seen == 4 * 3 * 240


def test_a_shift_in_all_traffic_raises_exactly_one_alarm(
    engine: Engine, model: str, make_leader: Callable[..., DriftLeader]
) -> None:
    clock = Clock()
    fleet = Fleet(engine, model, clock)
    leader = make_leader("L", detector(clock), clock=clock)
    assert leader.try_lead()
    events: list[DriftEvent] = []
    shift_at = MIN_HISTORY + 1  # no alarm before the detector knows the stream's clustering
    for pane_id in range(shift_at + 4):
        fleet.pane(pane_id, shift=8.0 if pane_id >= shift_at else 0.0)
        for _ in range(3):  # extra steps within a pane evaluate nothing more
            events += leader.step()
    assert len(fleet.single_events) == 1  # the single-detector baseline alarms once...
    assert len(events) == 1  # ...and so does the leader, not once per worker or per step
    alarm, baseline = events[0], fleet.single_events[0]
    assert alarm.report.pane_id == baseline.report.pane_id == shift_at + 1  # 2nd drifted
    assert alarm.drifted_features == baseline.drifted_features == ("age",)
    assert alarm.events_seen == baseline.events_seen


def test_a_pane_is_judged_only_once_every_worker_has_closed_it(
    engine: Engine, model: str, make_leader: Callable[..., DriftLeader]
) -> None:
    clock = Clock(5.0)
    fast, slow = detector(clock), detector(clock)
    shippers = [WindowShipper(engine, model, name, det, clock=clock)
                for name, det in (("fast", fast), ("slow", slow))]
    leader = make_leader("L", detector(clock), clock=clock, stale_after=30.0)
    assert leader.try_lead()
    for det in (fast, slow):
        det.observe(traffic(200, seed=1), timestamp=5.0)
    clock.now = 10.5
    shippers[0].ship()  # closes pane 0
    shippers[1].ship(tick=False)  # still shows pane 0 open
    leader.step()
    assert leader.evaluated_pane is None
    shippers[1].ship()
    leader.step()
    assert leader.evaluated_pane == 0
    assert leader.detector.report().window_size == 400
    # A worker that keeps lagging holds a pane back for at most stale_after.
    clock.now = 20.5
    shippers[0].ship()
    shippers[1].ship(tick=False)
    leader.step()
    assert leader.evaluated_pane == 0
    clock.now = 2 * PANE + 30.0
    leader.step()
    assert leader.evaluated_pane == 1


def test_only_one_leader_at_a_time(
    engine: Engine, model: str, make_leader: Callable[..., DriftLeader]
) -> None:
    base = detector(Clock())
    a, b = make_leader("a", base), make_leader("b", base)
    assert [a.try_lead(), b.try_lead()] == [True, False]
    assert [a.try_lead(), b.try_lead()] == [True, False]  # idempotent
    assert a.is_leader and not b.is_leader
    assert b.step() == [] and read_report(engine, model) is None  # a follower writes nothing
    other = make_leader("c", base, model=model + "-other")
    assert other.try_lead()  # each model elects its own leader
    a.release()
    assert not a.is_leader
    assert b.try_lead() and not a.try_lead()
    b.release()
    assert a.try_lead()


CHILD = textwrap.dedent("""
    import sys, time
    from driftloop import db
    from driftloop.drift import DriftDetector
    from driftloop.serving.drift_sync import DriftLeader
    base = DriftDetector.from_reference({"x": [0.0, 1.0, 2.0, 3.0]}, pane_seconds=10)
    leader = DriftLeader(db.create_engine(sys.argv[1]), sys.argv[2], "child", base)
    print("leader" if leader.try_lead() else "follower", flush=True)
    time.sleep(120)
""")


def test_a_killed_leader_process_is_replaced_within_seconds(
    db_url: str, engine: Engine, model: str, make_leader: Callable[..., DriftLeader]
) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, db_url, model],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        if line != "leader":
            child.kill()
            pytest.fail(f"the child did not lead ({line!r}): {child.communicate()[1]}")
        base = DriftDetector.from_reference({"x": [0.0, 1.0, 2.0, 3.0]}, pane_seconds=10)
        parent = make_leader("parent", base)
        assert not parent.try_lead()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + 5.0
        while not parent.try_lead():
            assert time.monotonic() < deadline, "the lock outlived its holder"
            time.sleep(0.05)
        assert parent.is_leader
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        child.communicate()


def test_a_dead_leader_connection_gives_the_leadership_up(
    db_url: str, engine: Engine, model: str, make_leader: Callable[..., DriftLeader]
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("a dedicated connection exists on PostgreSQL only")
    leader = make_leader("L", detector(Clock()))
    assert leader.try_lead()
    with engine.connect() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
        key = advisory_lock_key(model, schema)
        pid = conn.execute(sa.text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"),
            {"hi": key >> 32, "lo": key & 0xFFFFFFFF}).scalar_one()
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()
    deadline = time.monotonic() + 5.0
    while leader.is_leader:  # noticed without a query: the socket reports the session end
        assert time.monotonic() < deadline, "is_leader still True on a terminated session"
        time.sleep(0.02)
    assert leader.step() == []
    assert leader.try_lead()  # competes again on a fresh connection


def test_stale_worker_rows_are_ignored_not_deleted(
    engine: Engine, model: str, make_leader: Callable[..., DriftLeader]
) -> None:
    clock = Clock(100.0)
    live, dead = detector(clock), detector(clock)
    live.observe(traffic(300, seed=1), timestamp=91.0)
    dead.observe(traffic(200, seed=2), timestamp=92.0)
    WindowShipper(engine, model, "live", live, clock=clock).ship()
    WindowShipper(engine, model, "dead", dead, clock=lambda: 65.0).ship()  # 35 s ago
    leader = make_leader("L", detector(clock), clock=clock, stale_after=30.0)
    assert leader.try_lead()
    leader.step()
    stored = read_report(engine, model)
    assert stored is not None
    assert (stored["workers"], stored["worker_ids"]) == (1, ["live"])
    assert leader.detector.report().window_size == 300
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(db.drift_windows)).scalar()
    assert rows == 2
    WindowShipper(engine, model, "dead", dead, clock=clock).ship()  # it came back
    leader.step()
    assert leader.detector.report().window_size == 500
    WindowShipper(engine, model, "live", live, clock=clock).withdraw()
    leader.step()
    stored = read_report(engine, model)
    assert stored is not None and stored["worker_ids"] == ["dead"]


def test_read_report_from_another_process_sees_what_the_leader_stored(
    db_url: str, engine: Engine, model: str, make_leader: Callable[..., DriftLeader]
) -> None:
    clock = Clock()
    fleet = Fleet(engine, model, clock)
    leader = make_leader("L", detector(clock), clock=clock)
    elsewhere = db.create_engine(db_url)  # another process's engine
    try:
        follower = make_leader("F", detector(clock), engine=elsewhere, clock=clock)
        assert read_report(elsewhere, model) is None
        assert leader.try_lead() and not follower.try_lead()
        fleet.pane(0)
        fleet.pane(1)
        leader.step()
        assert follower.step() == []
        seen = read_report(elsewhere, model)
        assert seen is not None and seen == read_report(engine, model)
        assert seen["leader_id"] == "L" and seen["workers"] == 3
        assert seen["window_size"] == fleet.single.report().window_size == 2 * 3 * 240
        assert read_report(elsewhere, "no-such-model") is None
    finally:
        elsewhere.dispose()


def test_incompatible_windows_are_skipped_and_listed(
    engine: Engine, model: str, make_leader: Callable[..., DriftLeader]
) -> None:
    clock = Clock(5.0)
    good = detector(clock)
    odd = detector(clock, REFERENCE.assign(age=REFERENCE["age"] + 1))  # another champion
    good.observe(traffic(100, seed=1), timestamp=5.0)
    WindowShipper(engine, model, "good", good, clock=clock).ship()
    WindowShipper(engine, model, "odd", odd, clock=clock).ship()
    leader = make_leader("L", detector(clock), clock=clock)
    assert leader.try_lead()
    leader.step()
    stored = read_report(engine, model)
    assert stored is not None
    assert (stored["worker_ids"], stored["rejected_workers"]) == (["good"], ["odd"])


def test_a_window_in_a_newer_format_is_an_error_naming_both_versions_and_in_the_report(
    engine: Engine, model: str, make_leader: Callable[..., DriftLeader],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A leader still on the old code during a rolling upgrade: the upgraded worker's
    window is left out, loudly, and the report says which workers and which version."""
    clock = Clock(5.0)
    for worker_id in ("old", "new"):
        worker = detector(clock)
        worker.observe(traffic(100, seed=1), timestamp=5.0)
        WindowShipper(engine, model, worker_id, worker, clock=clock).ship()
    newer = codec.VERSION + 1
    table = db.drift_windows
    with db.transaction(engine) as conn:  # what a newer driftloop's worker would ship
        blob = conn.execute(sa.select(table.c.window)
                            .where(table.c.worker_id == "new")).scalar_one()
        conn.execute(sa.update(table).where(table.c.worker_id == "new")
                     .values(window=with_version(bytes(blob), newer)))
    leader = make_leader("L", detector(clock), clock=clock)
    assert leader.try_lead()
    with caplog.at_level(logging.WARNING, logger="driftloop.serving.drift_sync"):
        leader.step()
        leader.step()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, errors  # once, not once per step
    assert f"format version {newer}, newer than the 1/2 this process reads" in errors[0]
    assert "'new'" in errors[0]
    stored = read_report(engine, model)
    assert stored is not None
    assert (stored["worker_ids"], stored["rejected_workers"]) == (["old"], ["new"])
    assert stored["newer_format_workers"] == {"new": newer}
    assert leader.newer_format_workers == {"new": newer}
    assert read_newer_format_workers(engine, model) == {"new": newer}
    assert read_newer_format_workers(engine, "no such model") == {}
    assert schemas.Report.model_validate(stored).newer_format_workers == {"new": newer}


def test_misuse_is_refused_with_what_to_do(
    engine: Engine, model: str, make_leader: Callable[..., DriftLeader]
) -> None:
    clock = Clock(5.0)
    counted = DriftDetector.from_reference(REFERENCE, window=200, panes=2, clock=clock)
    with pytest.raises(ValueError, match="pane_seconds"):
        WindowShipper(engine, model, "w", counted)
    with pytest.raises(ValueError, match="pane_seconds"):
        make_leader("L", counted)
    WindowShipper(engine, model, "w", detector(clock), clock=clock).ship()
    with pytest.raises(ValueError, match="give each"):
        WindowShipper(engine, model + "-b", "w", detector(clock), clock=clock).ship()
