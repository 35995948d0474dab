"""RunStore: triggers start, attach or are ignored; transitions follow the state machine."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from driftloop.db import create_engine
from driftloop.training.runs import (
    COOLDOWN,
    EVALUATING,
    FAILED,
    IDLE,
    REJECTED,
    SHADOWING,
    SNAPSHOTTING,
    TRAINING,
    RunStateError,
    RunStore,
    Trigger,
)


@pytest.fixture
def store(db_url: str) -> RunStore:
    return RunStore(create_engine(db_url), "churn")


def test_a_trigger_starts_one_run_and_later_ones_attach_to_it(store: RunStore) -> None:
    first = store.trigger(Trigger.now("drift", "x3 drifted", "evt-1"))
    assert first.run is not None and not first.attached and first.run.state == SNAPSHOTTING
    again = store.trigger(Trigger.now("drift", "x4 drifted", "evt-2"))
    manual = store.trigger(Trigger.now("manual", "a person asked"))
    assert again.attached and manual.attached
    run = store.active()
    assert run is not None and run.id == first.run.id
    assert [t.drift_event_id for t in run.attached] == ["evt-2", None]
    assert run.trigger.drift_event_id == "evt-1"
    assert len(store.list()) == 1


def test_concurrent_triggers_never_start_two_runs(store: RunStore) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: store.trigger(Trigger.now("drift", f"alarm {i}")),
                                range(16)))
    assert sum(not r.attached for r in results) == 1
    assert len(store.list()) == 1


def test_transitions_follow_the_state_machine_and_are_recorded(store: RunStore) -> None:
    run = store.trigger(Trigger.now("manual", "go")).run
    assert run is not None
    with pytest.raises(RunStateError, match="SNAPSHOTTING → SHADOWING"):
        store.advance(run, SHADOWING, "skipping ahead")
    run = store.advance(run, TRAINING, "snapshot written", snapshot_id="s1")
    run = store.advance(run, EVALUATING, "trained", candidate_version=2)
    stale = run
    run = store.advance(run, REJECTED, "worse on the holdout", outcome="rejected")
    with pytest.raises(RunStateError, match="another process"):  # a second leader is late
        store.advance(stale, SHADOWING, "too late")
    run = store.advance(run, COOLDOWN, "rejected")
    run = store.advance(run, IDLE, "cooldown over")
    assert not run.active and run.finished_at is not None and run.outcome == "rejected"
    assert [(t.from_state, t.to_state) for t in run.transitions] == [
        (IDLE, SNAPSHOTTING), (SNAPSHOTTING, TRAINING), (TRAINING, EVALUATING),
        (EVALUATING, REJECTED), (REJECTED, COOLDOWN), (COOLDOWN, IDLE)]
    assert set(run.stages()) == {SNAPSHOTTING, TRAINING, EVALUATING, REJECTED, COOLDOWN}
    assert run.to_dict()["candidate_version"] == 2
    assert store.active() is None


def test_failed_ends_the_run_from_any_state_and_frees_the_slot(store: RunStore) -> None:
    run = store.trigger(Trigger.now("manual", "go")).run
    assert run is not None
    failed = store.advance(run, FAILED, "TRAINING: the trainer crashed")
    assert failed.outcome == "failed" and failed.reason == "TRAINING: the trainer crashed"
    assert store.active() is None
    assert store.trigger(Trigger.now("manual", "again")).run is not None


def test_cooldown_ignores_drift_but_a_person_can_override_it(store: RunStore) -> None:
    run = store.trigger(Trigger.now("manual", "go")).run
    assert run is not None
    run = store.advance(store.advance(store.advance(run, TRAINING, "s"), EVALUATING, "t"),
                        REJECTED, "worse")
    store.advance(run, COOLDOWN, "rejected")
    ignored = store.trigger(Trigger.now("drift", "still drifting"))
    assert ignored.ignored == "cooling down" and not ignored.attached
    started = store.trigger(Trigger.now("manual", "retrain anyway"))
    assert started.run is not None and started.run.id != run.id and not started.ignored
    assert store.get(run.id).state == IDLE  # the cooldown was ended, not left dangling


def test_drift_within_the_cooldown_after_a_finished_run_is_ignored(store: RunStore) -> None:
    run = store.trigger(Trigger.now("manual", "go")).run
    assert run is not None
    store.advance(run, FAILED, "boom")
    assert store.trigger(Trigger.now("drift", "x"), cooldown_s=60).ignored
    assert store.trigger(Trigger.now("drift", "x"), cooldown_s=0).run is not None


def test_a_bad_trigger_kind_names_the_field() -> None:
    with pytest.raises(ValueError, match="kind"):
        Trigger.now("cron", "nightly")
