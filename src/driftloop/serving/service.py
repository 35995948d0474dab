"""ModelService: everything one server process holds, and how it follows the registry.

Startup loads the champion (and candidate) from the registry — checksum-verified, warmed
on reference rows — builds the drift detector on the champion's training data, and starts
the observation path. A follower task then polls the registry's ``generation`` counter
(≤ 0.5 s) and hot-swaps slots or the traffic split when another process changed them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import uuid
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from driftloop.config import Settings
from driftloop.data.journal import PredictionJournal, open_writer
from driftloop.data.predictions import PredictionLog
from driftloop.data.snapshots import SnapshotStore
from driftloop.data.writer import BatchingWriter
from driftloop.drift import DriftDetector, DriftEvent, DriftInputError
from driftloop.errors import UnavailableError
from driftloop.events import EventBus
from driftloop.models.served import ServedModel, monitored_output, plain_value, served
from driftloop.registry import ModelRegistry, ModelVersion
from driftloop.serving import heartbeat
from driftloop.serving.drift_sync import DriftLeader, WindowShipper, read_report
from driftloop.serving.hub import Hub
from driftloop.serving.listener import RegistryListener
from driftloop.serving.metrics import ServerMetrics, mark_process_dead
from driftloop.serving.observer import Observation, Observer
from driftloop.serving.router import CANDIDATE, CHAMPION, AdaptiveAgentRouter, Routed, Traffic
from driftloop.tables import read_table
from driftloop.training.orchestrator import RetrainOrchestrator

logger = logging.getLogger(__name__)

#: Reference rows the detector and the output profile are built on (a uniform sample).
MAX_REFERENCE_ROWS = 100_000
#: Loaded model versions kept in memory (champion, candidate and the last ones served).
MODEL_CACHE = 4
WARM_ROWS = 8
#: The longest a label for a not-yet-logged prediction waits for the observation path.
SETTLE_TIMEOUT = 5.0


class ServiceUnavailableError(UnavailableError, RuntimeError):
    """The service cannot serve yet (no champion); the message says what to do."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: str  # "number" | "string" | "boolean"
    nullable: bool  # the training data had missing values here, so the model copes


class ModelService:
    """The loaded models, router, detector and logs of one server process."""

    def __init__(self, settings: Settings, registry: ModelRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or ModelRegistry.for_settings(settings)
        self.name = settings.model_name
        self.worker_id = f"{uuid.uuid4().hex[:8]}"
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{self.worker_id}"
        self.started_at = datetime.now(UTC)
        self.router = AdaptiveAgentRouter(
            Traffic(settings.traffic_mode, settings.candidate_weight,  # type: ignore[arg-type]
                    settings.shadow_fraction),
            candidate_timeout=settings.candidate_timeout, max_batch=settings.max_batch,
            max_wait_ms=settings.max_wait_ms, max_queue=settings.max_queue,
            max_queue_wait_ms=settings.max_queue_wait_ms)
        self.log = PredictionLog(self.registry.engine)
        self.writer: BatchingWriter | None = None
        self.journal: PredictionJournal | None = None
        self.detector: DriftDetector | None = None
        self.observer: Observer | None = None
        self.features: list[FeatureSpec] = []
        self.reference: pd.DataFrame | None = None
        self.generation = -1
        self.alarms: list[DriftEvent] = []
        self.metrics: ServerMetrics | None = None
        self.shipper: WindowShipper | None = None
        self.listener: RegistryListener | None = None
        self.leader: DriftLeader | None = None
        self._published_report: object = None
        self._dropped_published = 0
        self._follower: asyncio.Task[None] | None = None
        self._sharer: asyncio.Task[None] | None = None
        self._refreshing = asyncio.Lock()
        self._models: OrderedDict[int, ServedModel] = OrderedDict()
        self.bus = EventBus()
        self.orchestrator = RetrainOrchestrator(settings, self.registry, bus=self.bus,
                                                on_transition=self._wake_follower)
        self._looper: asyncio.Task[None] | None = None
        self._beater: asyncio.Task[None] | None = None
        self._new_reference: tuple[pd.DataFrame, list[Any], str] | None = None
        #: (time, seconds) of recent answered requests, and the failed ones: the dashboard's
        #: live latency and error rate (Prometheus has the full histograms).
        self.latencies: deque[tuple[float, float]] = deque(maxlen=20_000)
        self.errors = 0
        self.hub = Hub(self)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        champion = self.registry.get_champion(self.name)
        if champion is None:
            raise ServiceUnavailableError(
                f"model {self.name!r} has no champion in {self.settings.database_url}: push "
                f"one first (`driftloop models push {self.name} MODEL --reference DATA --label "
                "COLUMN`, ModelRegistry.push_candidate, or `driftloop demo`)")
        self.generation = self.registry.generation(self.name)
        self.reference = self._reference_for(champion)
        self.features = _feature_specs(self.reference)
        await self._install(CHAMPION, champion)
        candidate = self.registry.get_candidate(self.name)
        if candidate is not None:
            await self._install(CANDIDATE, candidate)
        self._apply_traffic()
        self.detector = await self._build_detector()
        self.metrics = ServerMetrics(self.detector.profiles, model_name=self.name)
        self._publish_state()
        if self.settings.log_predictions:
            self.writer, self.journal = await asyncio.to_thread(open_writer, self.log,
                                                                self.settings)
        self.observer = Observer(self.detector, self.writer, self.name,
                                 max_queue=self.settings.observe_queue,
                                 on_alarms=self._on_worker_alarms, on_batch=self._on_observed)
        self.observer.start()
        if self.settings.pane_seconds is not None:  # several workers: share one drift view
            worker = self.instance
            self.shipper = WindowShipper(self.registry.engine, self.name, worker, self.detector)
            self.leader = DriftLeader(self.registry.engine, self.name, worker, self.detector)
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        if self.registry.engine.dialect.name == "postgresql":
            self.listener = RegistryListener(self.registry.engine, self.name,
                                             lambda: loop.call_soon_threadsafe(self._wake.set))
            self.listener.start()
        self._follower = loop.create_task(self._follow())
        if self.shipper is not None:
            self._sharer = loop.create_task(self._share())
        self._looper = loop.create_task(self.orchestrator.run_forever(
            self.settings.poll_interval, leads=self.leads))
        self._beater = loop.create_task(self._beat())
        self.hub.start()
        # What start-up built lives as long as the process: move it out of the cyclic
        # collector's way, so full collections under load stay short (p99 latency).
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        await self.hub.stop()
        if self.listener is not None:
            await asyncio.to_thread(self.listener.stop)
        for task in (self._follower, self._sharer, self._looper, self._beater):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.observer is not None:
            await self.observer.stop()
        if self.shipper is not None and self.leader is not None:
            await asyncio.to_thread(self.shipper.withdraw)
            await asyncio.to_thread(self.leader.release)
        if self.writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.writer.close)
        if self.journal is not None:
            self.journal.close()
        with contextlib.suppress(Exception):  # best effort: a stale beat says the same
            await asyncio.to_thread(heartbeat.stopped, self.registry.engine, self.instance)
        await self.router.close()
        self.registry.engine.dispose()
        mark_process_dead(os.getpid())

    # ------------------------------------------------------------------ requests
    async def predict(self, features: Mapping[str, Any], request_id: str | None,
                      routing_key: str | None) -> tuple[str, Routed]:
        request_id = request_id or uuid.uuid4().hex
        routed = await self.router.predict(features, routing_key or request_id)
        if self.observer is not None:
            self.observer.offer(Observation(request_id, datetime.now(UTC), dict(features),
                                            routed.output, routed.version, routed.slot,
                                            routed.mirror, routed.mirror_version))
        return request_id, routed

    async def settle(self) -> None:
        """Wait (briefly) until the predictions answered so far are in the log: the
        observation path writes them just after the response, and a label may follow its
        answer faster than that."""
        if self.observer is not None:
            await self.observer.settle(SETTLE_TIMEOUT)

    # ------------------------------------------------------------------ following the registry
    async def refresh(self) -> bool:
        """Converge on the registry now: swap slots and traffic that changed. True if it did.

        Serialised: the follower and an admin request may both call it, and two
        interleaved refreshes could otherwise install an older champion last. The
        generation is recorded only once the slots match what was read with it."""
        async with self._refreshing:
            return await self._refresh()

    async def _refresh(self) -> bool:
        generation = await asyncio.to_thread(self.registry.generation, self.name)
        if generation == self.generation:
            return False
        champion, candidate = await asyncio.to_thread(
            lambda: (self.registry.get_champion(self.name), self.registry.get_candidate(self.name)))
        if champion is not None and (self.router.champion is None
                                     or self.router.champion.version != champion.version):
            await self._install(CHAMPION, champion)
            await self._follow_reference(champion)
        if candidate is None:
            self.router.remove_candidate()
        elif self.router.candidate is None or self.router.candidate.version != candidate.version:
            await self._install(CANDIDATE, candidate)
        self._apply_traffic()
        self.generation = generation
        self._publish_state()
        return True

    async def _follow(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # a NOTIFY cuts the wait short
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
            self._wake.clear()
            try:
                await self.refresh()
            except Exception:  # a registry hiccup must not stop following it
                logger.exception("following the registry failed; retrying")

    async def _beat(self) -> None:
        """Proof of life for the CLI (``driftloop status`` / ``retrain``)."""
        while True:
            try:
                await asyncio.to_thread(heartbeat.beat, self.registry.engine, self.name,
                                        self.instance, started_at=self.started_at,
                                        drives_loop=self.leads())
            except Exception:
                logger.exception("writing the heartbeat failed; retrying")
            await asyncio.sleep(heartbeat.INTERVAL)

    async def _share(self) -> None:
        """Drift sharing on its own clock, so database work never delays a swap."""
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                await self._share_drift()
            except Exception:
                logger.exception("sharing drift failed; retrying")

    async def _share_drift(self) -> None:
        """Ship this worker's window; if this worker leads, merge everyone's and judge."""
        if self.shipper is None or self.leader is None or self.observer is None:
            return
        await self.observer.on_thread(self.shipper.ship)
        leader = self.leader
        if await asyncio.to_thread(leader.try_lead):
            if self._new_reference is not None:
                frame, outputs, source = self._new_reference
                await asyncio.to_thread(leader.detector.reset_reference, frame, outputs, source)
                self._new_reference = None
            evaluated = leader.evaluated_pane
            events = await asyncio.to_thread(leader.step)
            if leader.evaluated_pane != evaluated:  # a new evaluation, for the dashboard's feed
                self.bus.publish("drift", await asyncio.to_thread(self.drift_report))
            await self._raise_alarms(events)
            report = leader.detector.last_report
            if self.metrics is not None and report is not None:
                self.metrics.set_drift(report)

    def drift_report(self) -> dict[str, Any] | None:
        """The drift view over all traffic: the leader's merged report with several
        workers, this process's own otherwise."""
        if self.shipper is not None:
            return read_report(self.registry.engine, self.name)
        report = self.detector.last_report if self.detector else None
        return report.to_dict() if report else None

    async def _install(self, slot: str, version: ModelVersion) -> None:
        """Load (sha256-verified), wrap and warm ``version``, then swap it into ``slot``."""
        model = await self._model(version.version)
        await self.router.install(slot, version.version, model, self._rows(WARM_ROWS))
        logger.info("%s is now v%d of %s", slot, version.version, self.name)

    async def _model(self, version: int) -> ServedModel:
        """The served model of ``version``, from the few most recently used ones when it is
        there: promoting the loaded candidate, or rolling back, then swaps at once."""
        if version in self._models:
            self._models.move_to_end(version)
            return self._models[version]
        model = await asyncio.to_thread(self.registry.load, self.name, version)
        wrapped = served(model, [f.name for f in self.features])
        self._models[version] = wrapped
        while len(self._models) > MODEL_CACHE:
            self._models.popitem(last=False)
        return wrapped

    def _wake_follower(self) -> None:
        """Converge on the registry now (the loop just changed it), not at the next poll."""
        wake = getattr(self, "_wake", None)
        if wake is not None:
            wake.set()

    def leads(self) -> bool:
        """Whether this process drives the retraining loop: the only one, or the drift
        leader among several workers."""
        return self.leader is None or self.leader.is_leader

    def _on_worker_alarms(self, events: list[DriftEvent]) -> None:
        """Alarms of this process's own detector (observer thread). With several workers
        only the leader's merged view raises alarms: one worker's share is not the traffic."""
        if self.shipper is None:
            asyncio.run_coroutine_threadsafe(self._raise_alarms(events), self._loop)

    async def _raise_alarms(self, events: Sequence[DriftEvent]) -> None:
        for event in events:
            self.alarms.append(event)
            self.bus.publish("alarm", event.to_dict())
            if self.settings.retrain_on_drift:
                features = ", ".join(event.drifted_features) or "the output"
                result = await asyncio.to_thread(
                    self.orchestrator.trigger, "drift",
                    f"drift in {features} after {event.events_seen} events", event.id)
                logger.info("drift alarm %s: %s", event.id,
                            result.ignored or ("attached to the running retraining"
                                               if result.attached else "retraining started"))

    async def _follow_reference(self, champion: ModelVersion) -> None:
        """A new champion: its training data becomes the drift reference, and its alarms
        start afresh (the old reference's drift is what the new model was trained on)."""
        if self.detector is None or self.observer is None:
            return  # starting up: the detector is built on this champion next
        frame = await asyncio.to_thread(self._reference_for, champion)
        model = self.router.champion
        assert model is not None
        outputs, source = await asyncio.to_thread(self._output_reference, champion,
                                                  model.model, frame)
        detector = self.detector
        try:
            await self.observer.on_thread(
                lambda: detector.reset_reference(frame, outputs, source))
        except DriftInputError as exc:  # e.g. a feature constant in the new training data
            logger.warning("drift reference kept: v%d's training data cannot replace it (%s)",
                           champion.version, exc)
            return
        self.reference = frame
        self.alarms.clear()
        if self.leader is not None:
            self._new_reference = (frame, outputs, source)
        logger.info("drift reference is now v%d's training data (%d rows)", champion.version,
                    len(frame))

    def _publish_state(self) -> None:
        if self.metrics is None:
            return
        router = self.router
        if router.champion is not None:
            self.metrics.set_champion(router.champion.version, self.generation)
        self.metrics.set_traffic(router.traffic.mode,
                                 router.traffic.shares(router.candidate is not None))

    def _on_observed(self, batch: Sequence[Observation]) -> None:
        """Runs on the observer's thread after each batch: feature histograms, shadow
        agreement and, when a pane closed, the drift gauges."""
        metrics, detector = self.metrics, self.detector
        if metrics is None or detector is None:
            return
        outputs = [monitored_output(o.output) for o in batch]
        has_output = len(detector.profiles) > len(detector.feature_names)
        metrics.observe_features([o.features for o in batch],
                                 outputs if has_output else None)
        for o in batch:
            if o.mirror is not None and o.mirror.done() and not o.mirror.cancelled():
                shadow = o.mirror.result()
                metrics.observe_shadow(agreed=_label(shadow) == _label(o.output),
                                       failed=shadow is None)
        report = detector.last_report
        if self.shipper is None and report is not None and report is not self._published_report:
            self._published_report = report
            metrics.set_drift(report)
            self.bus.publish("drift", report.to_dict())

    def render_metrics(self, accept: str | None) -> tuple[bytes, str]:
        """The /metrics body, with the queue depths and drop counts of this moment."""
        assert self.metrics is not None
        for slot in (self.router.champion, self.router.candidate):
            if slot is not None:
                self.metrics.set_queue_depth(slot.name, slot.queue.depth)
        if self.observer is not None:
            self.metrics.set_queue_depth("observations", self.observer.queue.qsize())
            new = self.observer.dropped - self._dropped_published
            if new > 0:
                self.metrics.count_dropped("observation", new)
                self._dropped_published += new
        return self.metrics.render(accept)

    def _apply_traffic(self) -> None:
        stored = self.registry.traffic(self.name)
        if stored:
            self.router.traffic = Traffic(**stored)

    # ------------------------------------------------------------------ reference data
    def _reference_for(self, champion: ModelVersion) -> pd.DataFrame:
        drop = set(self.settings.ignore_columns)
        if champion.dataset_id:
            store = SnapshotStore.for_registry(self.registry)
            snapshot = store.get(champion.dataset_id)
            frame = pd.read_parquet(snapshot.train_path)
            # The snapshot names its own label, id and time columns (a pushed model's label
            # need not be called what the settings say).
            drop.update(str(c) for c in snapshot.manifest["columns"].values() if c)
        elif self.settings.reference is not None:
            frame = read_table(self.settings.reference).to_pandas()
            drop.add(self.settings.label_column)
        else:
            raise ServiceUnavailableError(
                f"{self.name} v{champion.version} has no training snapshot: set `reference` "
                "(DRIFTLOOP_REFERENCE) to its training data so requests can be validated and "
                "drift measured")
        frame = frame[[c for c in frame.columns if c not in drop]]
        if len(frame) > MAX_REFERENCE_ROWS:
            frame = frame.sample(MAX_REFERENCE_ROWS, random_state=0)
        return frame.reset_index(drop=True)

    def _output_reference(self, champion: ModelVersion, model: ServedModel,
                          reference: pd.DataFrame) -> tuple[list[Any], str]:
        """The champion's outputs on rows it was not fit on, and which rows they are.

        Outputs on its own training rows are more confident than on any new traffic for a
        model that fits its training data closely (a default random forest: the output
        looked drifted at every evaluation, and each retrain rebuilt the same trap), so:
        the snapshot's holdout; else ``output_reference`` (rows the user knows the model
        was not fit on); else, as a last resort, the reference rows, and the source says
        that the output's drift is then not to be trusted.
        """
        frame, source = self._holdout_rows(champion)
        if frame is None:
            frame, source = reference, (
                f"the reference rows ({len(reference)}); they may include the rows the model "
                "was fit on, so an overfit model's output will look drifted: set "
                "output_reference (DRIFTLOOP_OUTPUT_REFERENCE) to rows it was not fit on")
        drop = {self.settings.label_column, *self.settings.ignore_columns}
        rows = [{str(k): plain_value(v) for k, v in row.items() if k not in drop}
                for row in frame.to_dict(orient="records")]
        return [monitored_output(o) for o in model.predict_batch(rows)], source

    def _holdout_rows(self, champion: ModelVersion) -> tuple[pd.DataFrame | None, str]:
        if champion.dataset_id:
            store = SnapshotStore.for_registry(self.registry)
            holdout = pd.read_parquet(store.get(champion.dataset_id).holdout_path)
            if len(holdout):
                if len(holdout) > MAX_REFERENCE_ROWS:
                    holdout = holdout.sample(MAX_REFERENCE_ROWS, random_state=0)
                return holdout, (f"holdout of snapshot {champion.dataset_id} ({len(holdout)} "
                                 f"rows v{champion.version} was not fit on)")
        if self.settings.output_reference is not None:
            frame = read_table(self.settings.output_reference).to_pandas()
            return frame, (f"output_reference {self.settings.output_reference} "
                           f"({len(frame)} rows)")
        return None, ""

    def _rows(self, n: int) -> list[dict[str, Any]]:
        assert self.reference is not None
        return [{str(k): plain_value(v) for k, v in row.items()}
                for row in self.reference.head(n).to_dict(orient="records")]

    async def _build_detector(self) -> DriftDetector:
        assert self.reference is not None and self.router.champion is not None
        champion = self.router.champion
        version = await asyncio.to_thread(self.registry.get_version, self.name,
                                          champion.version)
        outputs, source = await asyncio.to_thread(self._output_reference, version,
                                                  champion.model, self.reference)
        return reference_detector(self.reference, outputs, self.settings, source)


def reference_detector(reference: pd.DataFrame, outputs: list[Any] | None,
                       settings: Settings, output_source: str | None = None) -> DriftDetector:
    """The drift detector the server builds on a champion's reference data (``driftloop
    models push`` builds it too, to refuse data it would fail on before writing anything).

    A numeric column with a single value in the reference (a pixel that is blank in every
    training image) has no spread for KS or PSI; it is watched as a category instead, so
    any other value in live traffic counts as drift."""
    constant = [str(name) for name in reference.columns
                if pd.api.types.is_numeric_dtype(reference[name])
                and not pd.api.types.is_bool_dtype(reference[name])
                and reference[name].nunique(dropna=True) <= 1]
    return DriftDetector.from_reference(
        reference, output=outputs, output_source=output_source, categorical=constant,
        window=settings.drift_window, panes=settings.drift_panes,
        pane_seconds=settings.pane_seconds)


def _feature_specs(frame: pd.DataFrame) -> list[FeatureSpec]:
    specs = []
    for name, dtype in frame.dtypes.items():
        kind = ("boolean" if pd.api.types.is_bool_dtype(dtype)
                else "number" if pd.api.types.is_numeric_dtype(dtype) else "string")
        specs.append(FeatureSpec(str(name), kind, bool(frame[name].isna().any())))
    return specs


def _label(output: Any) -> Any:
    return output.get("prediction") if isinstance(output, Mapping) else output
