"""RetrainOrchestrator: drives retraining runs through the loop's state machine.

One process drives (the server's drift leader); any process may trigger (a drift alarm, an
admin request, the CLI, the schedule) because triggers are rows in the shared database
(:class:`~driftloop.training.runs.RunStore`). :meth:`tick` advances the active run by one
step and returns; every step is written so that doing it again after a crash is harmless:

- SNAPSHOTTING waits for ``min_train_rows`` labelled rows since the champion was made,
  then writes the newest ``snapshot_rows`` of them (plus a sample of the parent's
  training rows) as an immutable snapshot; a recorded snapshot is not written twice.
- TRAINING runs the configured trainer in a subprocess with a timeout, streaming its log
  lines, and pushes the result as the candidate (tagged with the run, so a candidate
  pushed just before a crash is found again rather than trained twice). A restart during
  training counts as an attempt; after ``train_attempts`` the run fails.
- EVALUATING scores both models on the snapshot's holdout and times them (p95 of
  single-row calls); a candidate that is worse or much slower is rejected here.
- SHADOWING mirrors traffic to the candidate and asks the :class:`ShadowGate` after every
  poll, over the labelled pairs in the prediction log (so several workers' traffic counts,
  and a restart loses nothing).
- PROMOTED watches the new champion's live labelled metric and rolls back when it trails
  the previous champion's (measured on the same shadow traffic) by over ``rollback_delta``.
- REJECTED and the watch end in COOLDOWN, which ends in IDLE after ``cooldown`` seconds.

The champion serves throughout: only promote_candidate (atomic) and rollback change it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.exc import OperationalError

from driftloop.config import Settings
from driftloop.data.predictions import PredictionLog
from driftloop.data.snapshots import EVENT_TIMESTAMP, SnapshotStore
from driftloop.evaluation import (
    GateConfig,
    LabelHorizon,
    LabelShare,
    RollbackWatch,
    ShadowGate,
    WatchDecision,
    labelled_share_by_prediction,
)
from driftloop.events import EventBus
from driftloop.models.served import plain_value, served
from driftloop.registry import ModelRegistry, ModelVersion
from driftloop.training.base import TrainerError
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
    RunStateError,
    RunStore,
    Trigger,
    TriggerResult,
)
from driftloop.training.sklearn import feature_frame
from driftloop.training.worker import TrainingJob, train_in_subprocess

logger = logging.getLogger(__name__)

ACTOR = "orchestrator"
#: Errors a retry may cure (a locked or restarting database, a full disk being cleaned).
TRANSIENT = (OperationalError, OSError)
MAX_TRANSIENT_RETRIES = 3
LATENCY_ROWS = 30
LATENCY_TRIALS = 3
#: The states whose own settings bound them, instead of ``step_timeout``.
SELF_TIMED = (TRAINING, SHADOWING, PROMOTED, COOLDOWN)
#: Seconds between two label-share checks of an undecided shadow phase.
LABEL_SHARE_EVERY_S = 60.0


class LabelReader:
    """Follows the labelled predictions logged since ``since`` in the order their labels
    arrived, returning only the rows labelled since the last call: the shadow gate and the
    post-promotion watch read each label once, however long they run (a restart reads
    the run's labels again, once). A label whose transaction commits after a later-stamped
    one was read is left out: that can only drop a row from the evidence, never count one
    twice, and does not depend on the row's value, so the gate's guarantee holds."""

    START = (datetime(1970, 1, 1, tzinfo=UTC), "")

    def __init__(self, log: PredictionLog, model_name: str, since: float) -> None:
        self.log, self.model_name = log, model_name
        self.since = datetime.fromtimestamp(since, UTC)
        self.after = self.START

    def new_rows(self) -> pd.DataFrame:
        frame = self.log.labelled(since=self.since, model_name=self.model_name,
                                  labelled_after=self.after)
        if len(frame):
            last = frame.iloc[-1]
            self.after = (last["labelled_at"].to_pydatetime(), str(last["request_id"]))
        return frame


class ShadowTally:
    """The paired evidence of one shadow phase, grown from each new batch of labels.

    A labelled pair joins the evidence only once its request is ``label_horizon_s`` seconds
    old (:class:`~driftloop.evaluation.LabelHorizon`), so that labels that arrive late for
    one outcome do not bias it. The champion's own per-request scores also feed a
    confidence sequence: the baseline the post-promotion watch compares against."""

    def __init__(self, gate: ShadowGate, reader: LabelReader, candidate: int,
                 rollback_alpha: float = 0.05) -> None:
        self.reader, self.candidate = reader, candidate
        self.pairs = gate.paired_scores()
        self.per_row = gate.metric.per_row
        self.sums = {"champion": 0.0, "candidate": 0.0}
        self.horizon = LabelHorizon(gate.config.label_horizon_s)
        self.baseline = RollbackWatch.baseline_sequence(gate.metric, rollback_alpha)
        self._share: tuple[float, LabelShare | None] | None = None  # (computed at, share)

    def update(self, now: float) -> dict[str, Any]:
        frame = self.reader.new_rows()
        mirrored = frame[_mirrored(frame, self.candidate)]
        times = [t.timestamp() for t in pd.to_datetime(mirrored["ts"], utc=True)]
        self.horizon.add(times, list(mirrored["output"]),
                         [s.get("output") for s in mirrored["shadow"]], list(mirrored["label"]))
        champion, candidate, labels = self.horizon.release(now)
        self.pairs.extend(champion, candidate, labels)
        champion_scores = [self.per_row(o, y) for o, y in zip(champion, labels, strict=True)]
        self.baseline.extend(champion_scores)
        self.sums["champion"] += sum(champion_scores)
        self.sums["candidate"] += sum(self.per_row(o, y)
                                      for o, y in zip(candidate, labels, strict=True))
        n = self.pairs.n
        return {**{f"{name}_score": total / n if n else None
                   for name, total in self.sums.items()},
                "champion_lower": self.baseline.lower, "champion_upper": self.baseline.upper,
                "awaiting_label_horizon": self.horizon.pending}

    def label_share(self, now: float, fresh: bool) -> LabelShare | None:
        """The labelled share by the champion's predicted class among the requests this
        phase pairs from: mirrored to the candidate and at least ``label_horizon_s`` old,
        labelled or not. Diverging shares mean that labels of one outcome are still out
        when the others are in, so the paired evidence over-represents the outcomes
        labelled first (:mod:`~driftloop.evaluation.horizon`). None before any such
        request, or when the predictions are not classes.

        It reads every request of the phase (about 1 s per 50,000 on a busy machine), so
        unless ``fresh`` (a verdict) it is computed again only every
        :data:`LABEL_SHARE_EVERY_S`."""
        if (not fresh and self._share is not None
                and now - self._share[0] < LABEL_SHARE_EVERY_S):
            return self._share[1]
        share = self._label_share(now)
        self._share = (now, share)
        return share

    def _label_share(self, now: float) -> LabelShare | None:
        until = datetime.fromtimestamp(now - self.horizon.horizon, UTC)
        if until <= self.reader.since:
            return None
        frame = self.reader.log.answered(since=self.reader.since, until=until,
                                         model_name=self.reader.model_name)
        mirrored = frame[_mirrored(frame, self.candidate)]
        return labelled_share_by_prediction(list(mirrored["output"]),
                                            list(mirrored["labelled"]))


def _mirrored(frame: pd.DataFrame, candidate: int) -> pd.Series[bool]:
    """Which logged requests the champion answered and mirrored to ``candidate``."""
    if not len(frame):
        return pd.Series(False, index=frame.index, dtype=bool)
    return frame["shadow"].map(
        lambda s: isinstance(s, dict) and s.get("version") == candidate
    ).astype(bool) & (frame["slot"] == "champion")


class LiveTally:
    """The requests ``version`` answered as champion, fed to its rollback watch."""

    def __init__(self, watch: RollbackWatch, reader: LabelReader, version: int) -> None:
        self.reader, self.version, self.watch = reader, version, watch

    def update(self) -> WatchDecision:
        frame = self.reader.new_rows()
        served_by = frame[(frame["model_version"] == self.version)
                          & (frame["slot"] == "champion")]
        self.watch.extend(list(served_by["output"]), list(served_by["label"]))
        return self.watch.decide()


class RetrainOrchestrator:
    """The continuous-training loop of one model."""

    def __init__(self, settings: Settings, registry: ModelRegistry, *,
                 bus: EventBus | None = None, clock: Callable[[], float] = time.time,
                 on_transition: Callable[[], None] = lambda: None) -> None:
        """``on_transition`` is called (on the event loop) after every state change, which
        may have changed the registry: the server passes its follower's wake-up, so its own
        slots swap at once instead of at the next poll."""
        self.settings = settings
        self.registry = registry
        self.name = settings.model_name
        self.runs = RunStore(registry.engine, self.name)
        self.log = PredictionLog(registry.engine)
        self.snapshots = SnapshotStore.for_registry(registry)
        self.gate = ShadowGate(GateConfig(
            metric=settings.gate_metric, min_delta=settings.min_delta,
            alpha=settings.gate_alpha, min_samples=settings.min_samples,
            max_duration_s=settings.shadow_max_duration,
            max_error_rate_ratio=settings.max_error_rate_ratio,
            max_latency_ratio=settings.max_latency_ratio,
            label_horizon_s=settings.label_horizon))
        self.bus = bus or EventBus()
        self.clock = clock
        self.on_transition = on_transition
        self._retry_at = 0.0
        self._retries = 0
        self._tallies: dict[str, Any] = {}  # the active run's shadow / watch evidence
        self._wake: tuple[asyncio.AbstractEventLoop | None, asyncio.Event | None] = (None, None)

    # ------------------------------------------------------------------ triggers
    def trigger(self, kind: str, reason: str, drift_event_id: str | None = None) -> TriggerResult:
        """Start a run, attach to the active one, or be ignored (cooldown); thread-safe."""
        result = self.runs.trigger(Trigger.now(kind, reason, drift_event_id),
                                   cooldown_s=self.settings.cooldown)
        if result.run is not None and not result.ignored:
            self._publish(result.run)
            self.wake()
        return result

    def wake(self) -> None:
        """Tick now instead of at the next poll (from any thread): a trigger in the process
        that drives the loop starts its run at once; other processes' triggers are found
        in the run store by the poll."""
        loop, event = self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def state(self) -> dict[str, Any]:
        """The loop's state for /api/state: IDLE or the active run's."""
        run = self.runs.active()
        if run is None:
            return {"state": IDLE, "run_id": None, "cooldown_until": None}
        until = (run.state_since.timestamp() + self.settings.cooldown
                 if run.state == COOLDOWN else None)
        return {"state": run.state, "run_id": run.id, "cooldown_until": until}

    # ------------------------------------------------------------------ driving
    async def run_forever(self, interval: float, leads: Callable[[], bool] = lambda: True
                          ) -> None:
        """Tick every ``interval`` seconds while this process ``leads``, and at once when
        :meth:`wake` is called."""
        event = asyncio.Event()
        self._wake = (asyncio.get_running_loop(), event)
        while True:
            if leads():
                try:
                    await self.tick()
                except Exception:  # the loop must outlive any one bad step
                    logger.exception("the retraining loop failed a step; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), interval)
            event.clear()

    async def tick(self) -> Run | None:
        """Advance the active run by one step (or start a scheduled one). Returns the run."""
        if self.clock() < self._retry_at:
            return None
        run = await asyncio.to_thread(self.runs.active)
        if run is None:
            await asyncio.to_thread(self._maybe_schedule)
            return None
        step = self._steps()[run.state]
        try:
            if run.state not in SELF_TIMED and self._age(run) > self.settings.step_timeout:
                raise TrainerError(f"{run.state} took longer than step_timeout "
                                   f"({self.settings.step_timeout:g} s)")
            after = await step(run)
        except RunStateError:  # another leader moved the run on: nothing to do here
            return None
        except TRANSIENT as exc:
            return await self._retry(run, exc)
        except Exception as exc:
            logger.warning("run %s failed in %s: %s", run.id, run.state, exc)
            return await self._fail(run, f"{run.state}: {exc}")
        self._retries = 0
        if after.state != run.state:
            self.on_transition()
        if after.state != run.state or after.evidence != run.evidence:
            self._publish(after)
        return after

    def _steps(self) -> dict[str, Callable[[Run], Awaitable[Run]]]:
        return {SNAPSHOTTING: self._snapshot, TRAINING: self._train,
                EVALUATING: self._evaluate, SHADOWING: self._shadow, PROMOTED: self._watch,
                REJECTED: self._after_reject, COOLDOWN: self._cooldown}

    async def _retry(self, run: Run, exc: Exception) -> Run | None:
        self._retries += 1
        if self._retries > MAX_TRANSIENT_RETRIES:
            self._retries = 0
            return await self._fail(run, f"{run.state}: {type(exc).__name__}: {exc} "
                                         f"(after {MAX_TRANSIENT_RETRIES} retries)")
        delay = 2.0 ** (self._retries - 1)
        logger.warning("run %s: transient error in %s (%s); retrying in %.0f s", run.id,
                       run.state, exc, delay)
        self._retry_at = self.clock() + delay
        return run

    async def _fail(self, run: Run, reason: str) -> Run | None:
        """End the run FAILED and undo what it put in front of traffic; the champion stays."""
        try:
            failed = await asyncio.to_thread(self.runs.advance, run, FAILED, reason)
        except RunStateError:
            return None
        if run.candidate_version is not None and run.state in (EVALUATING, SHADOWING):
            await asyncio.to_thread(self._withdraw, run.candidate_version, reason)
        self.on_transition()
        self._publish(failed)
        return failed

    # ------------------------------------------------------------------ steps
    async def _snapshot(self, run: Run) -> Run:
        if run.snapshot_id is not None:  # written before a restart
            return await self._advance(run, TRAINING, "snapshot already written")
        champion = await asyncio.to_thread(self._champion)
        frame = await asyncio.to_thread(self._training_rows, champion)
        if len(frame) < self.settings.min_train_rows:
            waiting = f"waiting for labels: {len(frame)} of {self.settings.min_train_rows}"
            if run.evidence.get("waiting") != waiting:
                run = await asyncio.to_thread(self.runs.update, run,
                                              evidence={**run.evidence, "waiting": waiting})
            return run
        parent = self.snapshots.get(champion.dataset_id) if champion.dataset_id else None
        snapshot = await asyncio.to_thread(
            self.snapshots.write, frame, time_column=EVENT_TIMESTAMP, entity_column="request_id",
            label_column=self._label_column(champion),
            holdout_fraction=self.settings.holdout_fraction, parent=parent,
            query={"source": "predictions", "model": self.name, "labelled": True,
                   "since_version_created": champion.created_at.isoformat(),
                   "newest": self.settings.snapshot_rows,
                   "parent_sample": self.settings.parent_sample, "run_id": run.id})
        evidence = {k: v for k, v in run.evidence.items() if k != "waiting"}
        return await self._advance(
            run, TRAINING, f"snapshot {snapshot.id}: {snapshot.rows} rows",
            snapshot_id=snapshot.id, parent_version=champion.version,
            evidence={**evidence, "snapshot": {"id": snapshot.id, "rows": snapshot.rows,
                                               "sha256": snapshot.sha256}})

    def _training_rows(self, champion: ModelVersion) -> pd.DataFrame:
        """The newest labelled rows since the champion was made, as a snapshot frame."""
        frame = self.log.labelled(since=champion.created_at, model_name=self.name)
        features = frame.attrs.get("feature_columns", [])
        frame = frame.tail(self.settings.snapshot_rows)
        rows = frame[["request_id", "ts", *features, "label"]].rename(
            columns={"ts": EVENT_TIMESTAMP, "label": self._label_column(champion)})
        if self.settings.parent_sample > 0 and champion.dataset_id and len(rows):
            parent = pd.read_parquet(self.snapshots.get(champion.dataset_id).train_path)
            sample = parent.sample(frac=self.settings.parent_sample, random_state=0)
            rows = pd.concat([sample[[c for c in rows.columns if c in sample.columns]], rows],
                             ignore_index=True)
        return rows.reset_index(drop=True)

    def _label_column(self, champion: ModelVersion) -> str:
        """The label column's name: the champion's training snapshot's, so a model pushed
        with its own label name keeps it through every retrain; else the setting."""
        if champion.dataset_id:
            return str(self.snapshots.get(champion.dataset_id).manifest["columns"]["label"])
        return self.settings.label_column

    async def _train(self, run: Run) -> Run:
        existing = await asyncio.to_thread(self._candidate_of, run)
        if existing is not None:  # pushed just before a restart
            return await self._advance(run, EVALUATING, f"candidate v{existing} already pushed",
                                       candidate_version=existing)
        attempt = run.attempt + 1
        if attempt > self.settings.train_attempts:
            raise TrainerError(f"training did not finish in {self.settings.train_attempts} "
                               "attempts (interrupted by restarts)")
        run = await asyncio.to_thread(self.runs.update, run, attempt=attempt)
        assert run.snapshot_id is not None
        job = TrainingJob(
            trainer=self.settings.trainer, options=dict(self.settings.trainer_options),
            params={}, data_dir=str(self.settings.data_dir),
            database_url=self.settings.database_url, model_name=self.name,
            artifacts_url=self.settings.artifacts_url,
            snapshot_id=run.snapshot_id, parent_version=run.parent_version,
            threads=self.settings.resolved_threads,
            adapters=list(self.settings.adapters),
            out_dir=str(Path(self.settings.data_dir) / "runs" / run.id / f"attempt-{attempt}"))

        async def on_log(line: str) -> None:
            await asyncio.to_thread(self.runs.log, run.id, line)
            self.bus.publish("log", {"run_id": run.id, "line": line, "at": self.clock()})

        started = time.perf_counter()
        model = await train_in_subprocess(job, timeout_s=self.settings.train_timeout,
                                          on_log=on_log)
        snapshot = self.snapshots.get(run.snapshot_id)
        version = await asyncio.to_thread(
            self.registry.push_candidate, self.name, model, parent=run.parent_version,
            dataset=(snapshot.id, snapshot.sha256),
            params={"trainer": self.settings.trainer, **self.settings.trainer_options},
            metrics={"train_seconds": round(time.perf_counter() - started, 3)},
            run_id=run.id, drift_event_id=run.trigger.drift_event_id, actor=ACTOR,
            reason=f"run {run.id}")
        return await self._advance(run, EVALUATING, f"trained v{version.version}",
                                   candidate_version=version.version)

    async def _evaluate(self, run: Run) -> Run:
        assert run.snapshot_id is not None and run.candidate_version is not None
        holdout, latency = await asyncio.to_thread(self._holdout, run)
        evidence = {**run.evidence, "holdout": holdout, "latency": latency}
        if not holdout["passed"] or not latency["passed"]:
            reason = holdout["reason"] if not holdout["passed"] else latency["reason"]
            await asyncio.to_thread(self._withdraw, run.candidate_version, reason)
            return await self._advance(run, REJECTED, reason, outcome="rejected",
                                       reason=reason, evidence=evidence)
        await asyncio.to_thread(
            self.registry.set_traffic, self.name,
            {"mode": "shadow", "weight": 0.0, "shadow_fraction": self.settings.shadow_fraction},
            actor=ACTOR, reason=f"run {run.id}: shadow v{run.candidate_version}")
        evidence["shadow_started_at"] = self.clock()
        return await self._advance(run, SHADOWING, holdout["reason"], evidence=evidence)

    def _holdout(self, run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
        assert run.snapshot_id is not None and run.candidate_version is not None
        snapshot = self.snapshots.get(run.snapshot_id)
        features, labels = feature_frame(snapshot, "holdout")
        rows = [{str(k): plain_value(v) for k, v in r.items()}
                for r in features.to_dict(orient="records")]
        names = [str(c) for c in features.columns]
        champion = served(self.registry.load(self.name, self._champion().version), names)
        candidate = served(self.registry.load(self.name, run.candidate_version), names)
        result = self.gate.offline(champion.predict_batch(rows), candidate.predict_batch(rows),
                                   [plain_value(y) for y in labels])
        holdout = {k: _finite(v) for k, v in vars(result).items()}
        self.registry.score_candidate(
            self.name, run.candidate_version, actor=ACTOR,
            metrics={f"holdout_{result.metric}": _finite(result.candidate),
                     "holdout_rows": result.n})
        for _ in range(LATENCY_TRIALS):  # a busy moment must not reject: a slower model
            p95s = p95_latencies(champion, candidate, rows[:LATENCY_ROWS])  # is slow each time
            ok, reason = self.gate.latency_guard(*p95s)
            if ok:
                break
        return holdout, {"champion_p95_s": p95s[0], "candidate_p95_s": p95s[1],
                         "passed": ok, "reason": reason}

    async def _shadow(self, run: Run) -> Run:
        candidate = run.candidate_version
        assert candidate is not None
        started = float(run.evidence["shadow_started_at"])
        tally = self._tally(f"{run.id}:shadow", lambda: ShadowTally(
            self.gate, LabelReader(self.log, self.name, started), candidate,
            self.settings.rollback_alpha))
        scores = await asyncio.to_thread(tally.update, self.clock())
        decision = self.gate.decide(tally.pairs, self.clock() - started)
        shadow = {**decision.evidence, **scores, "verdict": decision.verdict,
                  "reason": decision.reason, "candidate_version": candidate}
        if decision.verdict == "continue" and run.evidence.get("shadow", {}).get(
                "n") == shadow["n"]:
            return run
        share = await asyncio.to_thread(tally.label_share, self.clock(),
                                        decision.verdict != "continue")
        warnings = [label_delay_warning(share)] if share and share.diverging else []
        shadow.update(label_share=None if share is None else _finite_dict(share.to_dict()),
                      warnings=warnings)
        evidence = {**run.evidence, "shadow": _finite_dict(shadow)}
        if decision.verdict == "continue":
            return await asyncio.to_thread(self.runs.update, run, evidence=evidence)
        reason = "; ".join([decision.reason, *(f"warning: {w}" for w in warnings)])
        await asyncio.to_thread(  # the decision and its evidence, on the version and audited
            self.registry.score_candidate, self.name, candidate, actor=ACTOR,
            reason=reason, metrics={
                f"shadow_{k}": v for k, v in _finite_dict(shadow).items()
                if k in ("n", "mean_delta", "lower", "upper", "min_delta", "alpha", "verdict",
                         "champion_score", "candidate_score", "candidate_failures")})
        if decision.verdict == "reject":
            await asyncio.to_thread(self._withdraw, candidate, reason)
            return await self._advance(run, REJECTED, reason, outcome="rejected",
                                       reason=reason, evidence=evidence)
        await asyncio.to_thread(self._promote, candidate, reason)
        evidence["promoted_at"] = self.clock()
        return await self._advance(run, PROMOTED, reason, outcome="promoted",
                                   reason=reason, evidence=evidence)

    async def _watch(self, run: Run) -> Run:
        """After promotion: roll back when the new champion is shown worse live than the
        old one was on the shadow traffic, by more than ``rollback_delta``, at error level
        ``rollback_alpha`` (:class:`~driftloop.evaluation.RollbackWatch`)."""
        assert run.candidate_version is not None
        promoted_at = float(run.evidence["promoted_at"])
        version = run.candidate_version
        shadow = run.evidence.get("shadow", {})
        before = shadow.get("champion_score")
        baseline = (shadow.get("champion_lower", before), shadow.get("champion_upper", before))
        if before is None or None in baseline:
            return await self._advance(run, COOLDOWN, "watch skipped: no shadow baseline",
                                       evidence=run.evidence)
        tally = self._tally(f"{run.id}:watch", lambda: LiveTally(
            RollbackWatch(self.gate.metric, self.settings.rollback_alpha,
                          self.settings.rollback_delta, baseline,
                          min_samples=self.settings.watch_samples),
            LabelReader(self.log, self.name, promoted_at), version))
        decision = await asyncio.to_thread(tally.update)
        n = decision.n
        watch = {"n": n, "live_score": decision.live_mean, "live_lower": decision.live_lower,
                 "live_upper": decision.live_upper,
                 "previous_champion_score": before, "previous_champion_bounds": baseline,
                 "rollback_delta": self.settings.rollback_delta,
                 "rollback_alpha": self.settings.rollback_alpha, "verdict": decision.verdict,
                 "reason": decision.reason}
        evidence = {**run.evidence, "watch": _finite_dict(watch)}
        if decision.verdict == "rollback":
            reason = f"v{version}: {decision.reason}"
            await asyncio.to_thread(self.registry.rollback, self.name, actor=ACTOR,
                                    reason=reason)
            return await self._advance(run, COOLDOWN, f"rolled back: {reason}",
                                       outcome="rolled_back", reason=reason,
                                       evidence=evidence)
        if decision.verdict == "keep":
            return await self._advance(run, COOLDOWN, f"watch passed over {n} labels: "
                                       f"{decision.reason}", evidence=evidence)
        if self.clock() - promoted_at >= self.settings.watch_duration:
            return await self._advance(run, COOLDOWN, "watch ended (duration)",
                                       evidence=evidence)
        if run.evidence.get("watch", {}).get("n") != watch["n"]:
            run = await asyncio.to_thread(self.runs.update, run, evidence=evidence)
        return run

    async def _after_reject(self, run: Run) -> Run:
        return await self._advance(run, COOLDOWN, "candidate rejected")

    async def _cooldown(self, run: Run) -> Run:
        if self._age(run) < self.settings.cooldown:
            return run
        return await self._advance(run, IDLE, "cooldown over")

    # ------------------------------------------------------------------ helpers
    async def _advance(self, run: Run, to_state: str, note: str, **values: Any) -> Run:
        return await asyncio.to_thread(self.runs.advance, run, to_state, note, **values)

    def _tally(self, key: str, make: Callable[[], Any]) -> Any:
        """The evidence accumulated for ``key`` (one run's shadow or watch phase); others'
        are dropped, since only one run is ever active."""
        if key not in self._tallies:
            self._tallies = {key: make()}
        return self._tallies[key]

    def _age(self, run: Run) -> float:
        return self.clock() - run.state_since.timestamp()

    def _champion(self) -> ModelVersion:
        champion = self.registry.get_champion(self.name)
        if champion is None:
            raise TrainerError(f"model {self.name!r} has no champion to retrain")
        return champion

    def _candidate_of(self, run: Run) -> int | None:
        if run.candidate_version is not None:
            return run.candidate_version
        mine = [v.version for v in self.registry.list_versions(self.name) if v.run_id == run.id]
        return max(mine) if mine else None

    def _promote(self, version: int, reason: str) -> None:
        self.registry.promote_candidate(self.name, version, actor=ACTOR, reason=reason)
        self._traffic_off(reason)

    def _withdraw(self, version: int, reason: str) -> None:
        """Reject the candidate (if it still is one) and stop mirroring to it."""
        candidate = self.registry.get_candidate(self.name)
        if candidate is not None and candidate.version == version:
            self.registry.reject_candidate(self.name, version, actor=ACTOR, reason=reason)
        self._traffic_off(reason)

    def _traffic_off(self, reason: str) -> None:
        self.registry.set_traffic(self.name, {"mode": "off", "weight": 0.0,
                                              "shadow_fraction": 1.0},
                                  actor=ACTOR, reason=reason)

    def _maybe_schedule(self) -> None:
        interval = self.settings.retrain_interval
        if interval is None:
            return
        last = self.runs.list(limit=1)
        if not last or self.clock() - last[0].created_at.timestamp() >= interval:
            result = self.trigger("schedule", f"every {interval:g} s")
            if result.ignored:
                logger.info("scheduled retraining skipped: %s", result.ignored)

    def _publish(self, run: Run) -> None:
        self.bus.publish("run", run.to_dict())


def label_delay_warning(share: LabelShare) -> str:
    """What a run says when labels arrive depending on the outcome."""
    return (f"{share.describe()}: the paired evidence over-represents the outcomes labelled "
            "first; set label_horizon longer than the slowest label")


def p95_latencies(champion: Any, candidate: Any, rows: Sequence[dict[str, Any]],
                  repeats: int = 3) -> tuple[float, float]:
    """p95 seconds of single-row predict_batch calls (the serving unit of work) of both
    models, after a warm-up, with their calls interleaved so that whatever else the machine
    does slows both alike.

    Each row is scored ``repeats`` times by each model and the fastest of those calls
    counts: what a busy machine adds (a descheduled thread, a page fault) only ever adds
    time, so the minimum is the model's own cost for that row, while the p95 across rows
    still sees a model that is slow on some inputs. Without it one unlucky call in twenty
    decided the p95 of a model no slower than the champion."""
    models = (champion, candidate)
    rows = list(rows) or [{}]
    for model in models:
        model.predict_batch(rows[:1])
    times: tuple[list[float], list[float]] = ([], [])
    for row in rows:
        fastest = [math.inf, math.inf]
        for _ in range(max(repeats, 1)):
            for index, model in enumerate(models):
                started = time.perf_counter()
                model.predict_batch([row])
                fastest[index] = min(fastest[index], time.perf_counter() - started)
        for series, seconds in zip(times, fastest, strict=True):
            series.append(seconds)
    p95 = [max(statistics.quantiles(t, n=20)[-1] if len(t) > 1 else t[0], 1e-9)
           for t in times]
    return p95[0], p95[1]


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: store them as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finite_dict(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _finite(v) for k, v in values.items()}
