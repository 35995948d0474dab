"""RetrainOrchestrator, driven tick by tick on a real registry, prediction log and trainer
subprocess: a whole promotion, a rejection, a crashing and a hanging trainer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from tests.training.helpers import SHIFT, Clock, loop_settings, loop_stream, serve_traffic

from driftloop.config import Settings
from driftloop.demo.runner import ESTIMATOR, train_first_version
from driftloop.demo.stream import Stream
from driftloop.evaluation import GateConfig, ShadowGate
from driftloop.registry import ModelRegistry
from driftloop.training.orchestrator import RetrainOrchestrator, p95_latencies
from driftloop.training.runs import (
    COOLDOWN,
    EVALUATING,
    FAILED,
    IDLE,
    PROMOTED,
    REJECTED,
    SHADOWING,
    SNAPSHOTTING,
    TRAINING,
    Run,
)


@pytest.fixture(scope="module")
def stream() -> Stream:
    return loop_stream()


def tick(orchestrator: RetrainOrchestrator) -> Run:
    run = asyncio.run(orchestrator.tick())
    assert run is not None
    return run


def test_a_run_goes_from_drift_to_promotion_and_back_to_idle(
    tmp_path: Path, db_url: str, stream: Stream,
) -> None:
    settings = loop_settings(tmp_path, db_url)
    train_first_version(settings, stream, 1500)
    clock = Clock()
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    orchestrator = RetrainOrchestrator(settings, registry, clock=clock)
    events = orchestrator.bus
    started = orchestrator.trigger("drift", "x1 drifted", "evt-1")
    assert started.run is not None and started.run.state == SNAPSHOTTING

    run = tick(orchestrator)  # not enough labels yet: it waits, and says why
    assert run.state == SNAPSHOTTING and "waiting for labels" in run.evidence["waiting"]
    serve_traffic(settings, stream, SHIFT + 200, SHIFT + 900)  # v1 on the new concept
    run = tick(orchestrator)
    assert run.state == TRAINING and run.snapshot_id is not None and run.parent_version == 1
    run = tick(orchestrator)  # the subprocess trains; the result is pushed as candidate
    assert run.state == EVALUATING and run.candidate_version == 2
    assert any(f"training with {settings.resolved_threads} BLAS/OpenMP thread" in line
               for line in run.log_tail)
    candidate = registry.get_version("demo", 2)
    assert candidate.run_id == run.id and candidate.drift_event_id == "evt-1"
    assert candidate.dataset_id == run.snapshot_id
    run = tick(orchestrator)
    assert run.state == SHADOWING, run.reason
    assert run.evidence["holdout"]["candidate"] > run.evidence["holdout"]["champion"]
    assert registry.traffic("demo")["mode"] == "shadow"

    serve_traffic(settings, stream, SHIFT + 900, SHIFT + 1400, shadow_version=2)
    run = tick(orchestrator)
    assert run.state == PROMOTED, run.evidence.get("shadow")
    shadow = run.evidence["shadow"]
    assert shadow["n"] >= settings.min_samples and shadow["lower"] > settings.min_delta
    assert shadow["label_share"]["diverging"] is False and shadow["warnings"] == []
    assert registry.get_champion("demo").version == 2
    assert registry.traffic("demo")["mode"] == "off"

    serve_traffic(settings, stream, SHIFT + 1400, SHIFT + 1700)  # v2 serves: the watch
    run = tick(orchestrator)
    assert run.state == COOLDOWN and run.evidence["watch"]["live_score"] > 0.8
    assert orchestrator.trigger("drift", "more drift").ignored == "cooling down"
    assert tick(orchestrator).state == COOLDOWN
    clock.offset = settings.cooldown + 1
    run = tick(orchestrator)
    assert run.state == IDLE and not run.active and run.outcome == "promoted"
    assert [t.to_state for t in run.transitions] == [
        SNAPSHOTTING, TRAINING, EVALUATING, SHADOWING, PROMOTED, COOLDOWN, IDLE]
    assert orchestrator.state()["state"] == IDLE
    assert events is orchestrator.bus
    registry.engine.dispose()


def test_a_candidate_worse_on_the_holdout_is_rejected_before_any_traffic(
    tmp_path: Path, stream: Stream,
) -> None:
    settings = loop_settings(tmp_path, trainer_options={
        "estimator": "sklearn.dummy.DummyClassifier", "params": {"strategy": "prior"}})
    train_first_version(settings, stream, 1500)
    serve_traffic(settings, stream, 0, 700)  # the concept v1 knows well
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    orchestrator = RetrainOrchestrator(settings, registry)
    orchestrator.trigger("manual", "try a baseline")
    states = [tick(orchestrator).state for _ in range(3)]
    assert states == [TRAINING, EVALUATING, REJECTED]
    run = orchestrator.runs.list()[0]
    assert "holdout accuracy" in (run.reason or "")
    assert registry.get_version("demo", 2).status == "rejected"
    assert registry.get_champion("demo").version == 1
    assert (registry.traffic("demo") or {}).get("mode", "off") == "off"
    assert tick(orchestrator).state == COOLDOWN
    registry.engine.dispose()


def test_a_candidate_that_loses_in_shadow_is_rejected(tmp_path: Path, stream: Stream) -> None:
    settings = loop_settings(tmp_path, min_delta=0.05)
    train_first_version(settings, stream, 1500)
    serve_traffic(settings, stream, SHIFT + 200, SHIFT + 900)  # v2 learns the new concept
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    orchestrator = RetrainOrchestrator(settings, registry)
    orchestrator.trigger("manual", "try")
    assert [tick(orchestrator).state for _ in range(3)] == [TRAINING, EVALUATING, SHADOWING]
    serve_traffic(settings, stream, 1500, SHIFT, shadow_version=2)  # …but traffic is old
    run = tick(orchestrator)
    assert run.state == REJECTED, run.evidence.get("shadow")
    assert run.evidence["shadow"]["upper"] < settings.min_delta
    assert registry.get_version("demo", 2).status == "rejected"
    assert registry.get_champion("demo").version == 1
    assert registry.traffic("demo")["mode"] == "off"
    registry.engine.dispose()


def shadowing_the_champion_itself(settings: Settings, stream: Stream
                                  ) -> tuple[ModelRegistry, RetrainOrchestrator]:
    """A run in SHADOWING in seconds: the champion's own model pushed as the run's
    candidate (what a restart after the push finds), so no trainer runs."""
    train_first_version(settings, stream, 1500)
    serve_traffic(settings, stream, 0, 500)
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    orchestrator = RetrainOrchestrator(settings, registry)
    run = orchestrator.trigger("manual", "try").run
    assert run is not None and tick(orchestrator).state == TRAINING
    registry.push_candidate("demo", registry.load("demo", 1), parent=1, run_id=run.id)
    assert [tick(orchestrator).state for _ in range(2)] == [EVALUATING, SHADOWING]
    return registry, orchestrator


@pytest.mark.parametrize("delayed", [True, False])
def test_labels_held_back_for_one_outcome_are_a_warning_in_the_run(
    tmp_path: Path, stream: Stream, delayed: bool,
) -> None:
    """Outcome-dependent label delay: class 0's labels are still out when the others are
    in, on traffic the champion knows (so its predicted class follows the outcome). The
    run's shadow evidence says so; without the delay it says nothing."""
    settings = loop_settings(tmp_path)
    registry, orchestrator = shadowing_the_champion_itself(settings, stream)
    serve_traffic(settings, stream, 500, SHIFT, shadow_version=2,
                  label_if=lambda label: not delayed or label != 0)
    run = tick(orchestrator)
    shadow = run.evidence["shadow"]
    share = shadow["label_share"]
    assert share["diverging"] is delayed, share
    if not delayed:
        assert shadow["warnings"] == [] and share["pvalue"] > 0.001
        return
    assert share["shares"]["0"] < min(v for k, v in share["shares"].items() if k != "0")
    assert len(shadow["warnings"]) == 1
    assert "labels arrive depending on the outcome" in shadow["warnings"][0]
    assert "label_horizon" in shadow["warnings"][0]
    if run.state != SHADOWING:  # decided: the verdict carries the warning too
        assert run.reason is not None and "warning: labelled share" in run.reason
    registry.engine.dispose()


@pytest.mark.parametrize(("trainer", "options", "timeout", "message"), [
    ("tests.training.trainers:CrashingTrainer", {}, 120.0, "the GPU caught fire"),
    ("tests.training.trainers:SlowTrainer", {"seconds": 60, "estimator": ESTIMATOR}, 2.0,
     "ran past its limit"),
])
def test_a_failing_trainer_fails_the_run_and_a_later_trigger_works(
    tmp_path: Path, stream: Stream, trainer: str, options: dict[str, Any], timeout: float,
    message: str,
) -> None:
    settings = loop_settings(tmp_path, trainer=trainer, trainer_options=options,
                             train_timeout=timeout)
    train_first_version(settings, stream, 1500)
    serve_traffic(settings, stream, SHIFT + 200, SHIFT + 900)
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    orchestrator = RetrainOrchestrator(settings, registry)
    orchestrator.trigger("manual", "go")
    assert tick(orchestrator).state == TRAINING
    failed = tick(orchestrator)
    assert failed.state == FAILED and message in (failed.reason or ""), failed.reason
    assert registry.get_champion("demo").version == 1
    assert registry.get_candidate("demo") is None
    assert orchestrator.state()["state"] == IDLE

    fixed = RetrainOrchestrator(settings.model_copy(update={
        "trainer": Settings.model_fields["trainer"].default,
        "trainer_options": {"estimator": ESTIMATOR}, "train_timeout": 120.0}), registry)
    again = fixed.trigger("manual", "after the fix")
    assert again.run is not None and again.run.id != failed.id
    assert tick(fixed).state == TRAINING
    assert tick(fixed).state == EVALUATING
    registry.engine.dispose()


def test_the_watch_rolls_back_a_promotion_that_does_worse_live(
    tmp_path: Path, stream: Stream,
) -> None:
    settings = loop_settings(tmp_path)
    train_first_version(settings, stream, 1500)
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    orchestrator = RetrainOrchestrator(settings, registry)
    orchestrator.trigger("manual", "go")
    serve_traffic(settings, stream, SHIFT + 200, SHIFT + 900)
    assert [tick(orchestrator).state for _ in range(3)] == [TRAINING, EVALUATING, SHADOWING]
    serve_traffic(settings, stream, SHIFT + 900, SHIFT + 1400, shadow_version=2)
    run = tick(orchestrator)
    assert run.state == PROMOTED
    metrics = registry.get_version("demo", 2).metrics
    assert metrics["shadow_verdict"] == "promote" and metrics["shadow_n"] == run.evidence[
        "shadow"]["n"]
    assert any(e.action == "score_candidate" and e.version == 2 and e.reason == run.reason
               for e in registry.audit("demo"))
    # the world moves again: v2's live answers are now mostly wrong
    serve_traffic(settings, stream, SHIFT + 1400, SHIFT + 1700, shuffle_labels=True)
    run = tick(orchestrator)
    assert run.state == COOLDOWN and run.outcome == "rolled_back", run.evidence.get("watch")
    assert registry.get_champion("demo").version == 1
    registry.engine.dispose()


def test_a_step_past_its_time_limit_fails_the_run(tmp_path: Path, stream: Stream) -> None:
    settings = loop_settings(tmp_path, step_timeout=30.0)
    train_first_version(settings, stream, 1500)
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    clock = Clock()
    orchestrator = RetrainOrchestrator(settings, registry, clock=clock)
    orchestrator.trigger("manual", "no labels will come")
    assert tick(orchestrator).state == SNAPSHOTTING  # waiting for labels
    clock.offset = 31.0
    failed = tick(orchestrator)
    assert failed.state == FAILED and "step_timeout" in (failed.reason or "")
    registry.engine.dispose()


def test_the_schedule_starts_a_run_every_interval(tmp_path: Path, stream: Stream) -> None:
    settings = loop_settings(tmp_path, retrain_interval=3600.0, cooldown=0.0)
    train_first_version(settings, stream, 1500)
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    clock = Clock()
    orchestrator = RetrainOrchestrator(settings, registry, clock=clock)
    assert asyncio.run(orchestrator.tick()) is None  # nothing ran yet: the first is due now
    first = orchestrator.runs.active()
    assert first is not None and first.trigger.kind == "schedule"
    orchestrator.runs.advance(first, FAILED, "stopped by the test")
    assert asyncio.run(orchestrator.tick()) is None and orchestrator.runs.active() is None
    clock.offset = 3601.0
    asyncio.run(orchestrator.tick())
    second = orchestrator.runs.active()
    assert second is not None and second.id != first.id
    registry.engine.dispose()


def test_the_snapshot_mixes_in_a_share_of_the_parents_training_rows(
    tmp_path: Path, stream: Stream,
) -> None:
    settings = loop_settings(tmp_path, parent_sample=0.5)
    train_first_version(settings, stream, 1500)
    serve_traffic(settings, stream, SHIFT + 200, SHIFT + 700)  # 500 labelled rows
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    orchestrator = RetrainOrchestrator(settings, registry)
    orchestrator.trigger("manual", "go")
    run = tick(orchestrator)
    assert run.state == TRAINING and run.snapshot_id is not None
    snapshot = orchestrator.snapshots.get(run.snapshot_id)
    parent = orchestrator.snapshots.get(registry.get_version("demo", 1).dataset_id or "")
    assert snapshot.rows == 500 + round(0.5 * parent.manifest["rows"]["train"])
    assert snapshot.parent_id == parent.id
    assert snapshot.manifest["query"]["parent_sample"] == 0.5
    registry.engine.dispose()


def test_a_transient_database_error_is_retried_not_fatal(
    tmp_path: Path, stream: Stream, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = loop_settings(tmp_path)
    train_first_version(settings, stream, 1500)
    serve_traffic(settings, stream, SHIFT + 200, SHIFT + 700)
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    clock = Clock()
    orchestrator = RetrainOrchestrator(settings, registry, clock=clock)
    orchestrator.trigger("manual", "go")
    real = orchestrator.log.labelled
    failures = iter([OperationalError("SELECT", {}, Exception("database is locked"))])

    def flaky(**kwargs: Any) -> Any:
        for error in failures:
            raise error
        return real(**kwargs)

    monkeypatch.setattr(orchestrator.log, "labelled", flaky)
    run = asyncio.run(orchestrator.tick())
    assert run is not None and run.state == SNAPSHOTTING  # kept, to be retried
    assert asyncio.run(orchestrator.tick()) is None  # backing off
    clock.offset = 2.0
    assert tick(orchestrator).state == TRAINING
    registry.engine.dispose()


class Sleepy:
    """A model whose every ``hiccup``-th call also waits ``stall`` seconds: what a busy
    machine does to a model that is no slower than another."""

    def __init__(self, seconds: float, hiccup: int = 0, stall: float = 0.0) -> None:
        self.seconds, self.hiccup, self.stall, self.calls = seconds, hiccup, stall, 0

    def predict_batch(self, rows: list[dict[str, Any]]) -> list[Any]:
        self.calls += 1
        stalled = self.hiccup and self.calls % self.hiccup == 0
        time.sleep(self.seconds + (self.stall if stalled else 0.0))
        return [{"prediction": 0} for _ in rows]


def test_the_latency_guard_compares_interleaved_p95s() -> None:
    rows = [{"x": i} for i in range(20)]
    gate = ShadowGate(GateConfig(max_latency_ratio=1.5))
    slow = p95_latencies(Sleepy(0.002), Sleepy(0.02), rows)
    assert slow[1] > 5 * slow[0] and not gate.latency_guard(*slow)[0]
    same = p95_latencies(Sleepy(0.005), Sleepy(0.005), rows)
    assert gate.latency_guard(*same)[0]


def test_a_stalled_call_does_not_make_an_equal_model_slow() -> None:
    # One call in seven stalls for 40 ms (a descheduled thread): 3 of 20 single calls, so a
    # p95 over single calls saw the stall and rejected a model as fast as the champion.
    rows = [{"x": i} for i in range(20)]
    gate = ShadowGate(GateConfig(max_latency_ratio=1.5))
    p95s = p95_latencies(Sleepy(0.005), Sleepy(0.005, hiccup=7, stall=0.04), rows)
    assert gate.latency_guard(*p95s)[0], p95s


def test_a_trigger_wakes_the_driving_loop_at_once(tmp_path: Path) -> None:
    """A drift alarm's trigger starts the loop's next step now, not at the next poll: the
    run row is written once and the process that drives the loop is woken directly."""
    settings = loop_settings(tmp_path)
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    orchestrator = RetrainOrchestrator(settings, registry)
    asked: list[float] = []

    def leads() -> bool:  # asked once per pass of the loop; False: do no step here
        asked.append(time.monotonic())
        return False

    async def main() -> None:
        driving = asyncio.create_task(orchestrator.run_forever(600.0, leads=leads))
        try:
            while not asked:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(orchestrator.trigger, "drift", "from the test")
            deadline = time.monotonic() + 60  # far less than the 600 s poll
            while len(asked) < 2:
                assert time.monotonic() < deadline, "the trigger did not wake the loop"
                await asyncio.sleep(0.01)
        finally:
            driving.cancel()

    asyncio.run(main())
    registry.engine.dispose()
