"""Watching the traffic: the drift detector, the observation path and the prediction log.

Each answered request is offered to the :class:`~driftloop.serving.observer.Observer`,
which logs it and feeds the detector on its own thread. With several workers
(``pane_seconds`` set) each ships its window and the drift leader merges them all and
judges (:mod:`~driftloop.serving.drift_sync`); otherwise this process judges its own.
Alarms go to :class:`~driftloop.serving.alarms.Alarms`, gauges to the
:class:`~driftloop.serving.publishing.MetricsPublisher`, evaluations to the event bus.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from typing import Any

import pandas as pd

from driftloop.config import Settings
from driftloop.data.journal import PredictionJournal, open_writer
from driftloop.data.predictions import PredictionLog
from driftloop.data.writer import BatchingWriter
from driftloop.drift import DriftDetector, DriftInputError
from driftloop.events import EventBus
from driftloop.models.served import ServedModel
from driftloop.registry import ModelRegistry, ModelVersion
from driftloop.serving.alarms import Alarms
from driftloop.serving.drift_sync import (
    DriftLeader,
    WindowShipper,
    read_newer_format_workers,
    read_report,
)
from driftloop.serving.observer import Observation, Observer
from driftloop.serving.publishing import MetricsPublisher
from driftloop.serving.reference import ReferenceData

logger = logging.getLogger(__name__)

#: The longest a label for a not-yet-logged prediction waits for the observation path.
SETTLE_TIMEOUT = 5.0


class DriftMonitor:
    """This process's detector, observer and log writer, and its share of the drift view."""

    def __init__(self, settings: Settings, registry: ModelRegistry, log: PredictionLog,
                 bus: EventBus, reference: ReferenceData, alarms: Alarms,
                 publisher: MetricsPublisher) -> None:
        self.settings, self.registry, self.log, self.bus = settings, registry, log, bus
        self.reference, self.alarms, self.publisher = reference, alarms, publisher
        self.name = settings.model_name
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.detector: DriftDetector | None = None
        self.observer: Observer | None = None
        self.writer: BatchingWriter | None = None
        self.journal: PredictionJournal | None = None
        self.shipper: WindowShipper | None = None
        self.leader: DriftLeader | None = None
        self._published_report: object = None
        self._new_reference: tuple[pd.DataFrame, list[Any], str] | None = None

    async def start(self, champion: ModelVersion, model: ServedModel) -> None:
        """Build the detector on the champion's reference and start observing."""
        self.detector = await asyncio.to_thread(self.reference.detector, champion, model)
        self.publisher.attach(self.detector)
        if self.settings.log_predictions:
            self.writer, self.journal = await asyncio.to_thread(open_writer, self.log,
                                                                self.settings)
        self.alarms.bind(asyncio.get_running_loop())
        self.observer = Observer(self.detector, self.writer, self.name,
                                 max_queue=self.settings.observe_queue,
                                 on_alarms=self._own_alarms, on_batch=self._observed)
        self.observer.start()
        if self.settings.pane_seconds is not None:  # several workers: share one drift view
            self.shipper = WindowShipper(self.registry.engine, self.name, self.instance,
                                         self.detector)
            self.leader = DriftLeader(self.registry.engine, self.name, self.instance,
                                      self.detector)

    async def stop(self) -> None:
        if self.observer is not None:
            await self.observer.stop()
        if self.shipper is not None and self.leader is not None:
            await asyncio.to_thread(self.shipper.withdraw)
            await asyncio.to_thread(self.leader.release)
        if self.writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.writer.close)
        if self.journal is not None:
            self.journal.close()

    def offer(self, observation: Observation) -> None:
        if self.observer is not None:
            self.observer.offer(observation)

    async def settle(self) -> None:
        """Wait (briefly) until the predictions answered so far are in the log: the
        observation path writes them just after the response, and a label may follow its
        answer faster than that."""
        if self.observer is not None:
            await self.observer.settle(SETTLE_TIMEOUT)

    def leads(self) -> bool:
        """Whether this process judges drift (and so drives the retraining loop): the only
        one, or the drift leader among several workers."""
        return self.leader is None or self.leader.is_leader

    def shares(self) -> bool:
        """Whether the drift view is shared among several workers."""
        return self.shipper is not None

    def drift_report(self) -> dict[str, Any] | None:
        """The drift view over all traffic: the leader's merged report with several
        workers, this process's own otherwise."""
        if self.shipper is not None:
            return read_report(self.registry.engine, self.name)
        report = self.detector.last_report if self.detector else None
        return report.to_dict() if report else None

    def newer_format_workers(self) -> dict[str, int]:
        """Workers whose drift windows a newer driftloop wrote (worker id → format
        version), left out of the drift view until the leader runs that version too: a
        rolling upgrade not finished. As the leader last stored it, so every worker tells
        the same; a database read with several workers, always empty alone."""
        if self.shipper is None:
            return {}
        return read_newer_format_workers(self.registry.engine, self.name)

    async def share_forever(self) -> None:
        """Drift sharing on its own clock, so database work never delays a swap."""
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                await self._share()
            except Exception:
                logger.exception("sharing drift failed; retrying")

    async def _share(self) -> None:
        """Ship this worker's window; if this worker leads, merge everyone's and judge."""
        if self.shipper is None or self.leader is None or self.observer is None:
            return
        await self.observer.on_thread(self.shipper.ship)
        leader = self.leader
        if not await asyncio.to_thread(leader.try_lead):
            return
        if self._new_reference is not None:
            frame, outputs, source = self._new_reference
            await asyncio.to_thread(leader.detector.reset_reference, frame, outputs, source)
            self._new_reference = None
        evaluated = leader.evaluated_pane
        events = await asyncio.to_thread(leader.step)
        if leader.evaluated_pane != evaluated:  # a new evaluation, for the dashboard's feed
            self.bus.publish("drift", await asyncio.to_thread(self.drift_report))
        await self.alarms.raise_alarms(events)
        self.publisher.set_newer_format_workers(len(leader.newer_format_workers))
        if leader.detector.last_report is not None:
            self.publisher.set_drift(leader.detector.last_report)

    async def follow_reference(self, champion: ModelVersion, model: ServedModel) -> None:
        """A new champion: its training data becomes the drift reference, and its alarms
        start afresh (the old reference's drift is what the new model was trained on)."""
        if self.detector is None or self.observer is None:
            return  # starting up: the detector is built on this champion next
        frame = await asyncio.to_thread(self.reference.load, champion)
        outputs, source = await asyncio.to_thread(self.reference.outputs, champion, model,
                                                  frame)
        detector = self.detector
        try:
            await self.observer.on_thread(
                lambda: detector.reset_reference(frame, outputs, source))
        except DriftInputError as exc:  # e.g. a feature constant in the new training data
            logger.warning("drift reference kept: v%d's training data cannot replace it (%s)",
                           champion.version, exc)
            return
        self.reference.frame = frame
        self.alarms.clear()
        if self.leader is not None:
            self._new_reference = (frame, outputs, source)
        logger.info("drift reference is now v%d's training data (%d rows)", champion.version,
                    len(frame))

    def _own_alarms(self, events: list[Any]) -> None:
        """Alarms of this process's own detector (observer thread). With several workers
        only the leader's merged view raises alarms: one worker's share is not the traffic."""
        if self.shipper is None:
            self.alarms.from_thread(events)

    def _observed(self, batch: Sequence[Observation]) -> None:
        """Runs on the observer's thread after each batch: the feature and shadow gauges
        and, when a pane closed in a single process, its new evaluation."""
        detector = self.detector
        if detector is None:
            return
        self.publisher.observe(batch, detector)
        report = detector.last_report
        if self.shipper is None and report is not None and report is not self._published_report:
            self._published_report = report
            self.publisher.set_drift(report)
            self.bus.publish("drift", report.to_dict())
