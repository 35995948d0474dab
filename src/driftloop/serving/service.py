"""ModelService: the parts of one server process, started and stopped together.

:func:`~driftloop.serving.compose.build_service` builds the parts; each does one job:

- :class:`~driftloop.serving.reference.ReferenceData`: the champion's input and output
  reference (drift reference, request schema, warm-up rows);
- :class:`~driftloop.serving.following.RegistryFollower`: follows the registry, hot-swaps;
- :class:`~driftloop.serving.monitor.DriftMonitor`: observes traffic, logs it, judges drift
  (shared among workers through the drift leader);
- :class:`~driftloop.serving.alarms.Alarms`: a drift alarm to the feed and the loop;
- :class:`~driftloop.serving.publishing.MetricsPublisher`: the Prometheus metrics;
- :class:`~driftloop.serving.hub.Hub` and :class:`~driftloop.serving.poller.StatePoller`:
  the dashboard's feed and what it shows, through a read-only
  :class:`~driftloop.serving.view.StateView`.

This class only holds them, answers requests through them and runs their background
tasks for as long as the process serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from driftloop.config import Settings
from driftloop.data.predictions import PredictionLog
from driftloop.events import EventBus
from driftloop.registry import ModelRegistry
from driftloop.serving import heartbeat
from driftloop.serving.alarms import Alarms
from driftloop.serving.following import RegistryFollower
from driftloop.serving.hub import Hub
from driftloop.serving.metrics import mark_process_dead
from driftloop.serving.monitor import DriftMonitor
from driftloop.serving.observer import Observation
from driftloop.serving.publishing import MetricsPublisher
from driftloop.serving.reference import (
    FeatureSpec,
    ReferenceData,
    ServiceUnavailableError,
    reference_detector,
)
from driftloop.serving.router import Routed, TrafficRouter
from driftloop.serving.view import RequestStats
from driftloop.training.orchestrator import RetrainOrchestrator

__all__ = ["FeatureSpec", "ModelService", "ServiceUnavailableError", "reference_detector"]


class Background(Protocol):
    """A part with a task that runs as long as the server does."""

    def run(self) -> Coroutine[Any, Any, None]: ...


class ModelService:
    """The loaded models, router, drift monitor and logs of one server process."""

    def __init__(self, settings: Settings, *, registry: ModelRegistry, router: TrafficRouter,
                 log: PredictionLog, bus: EventBus, orchestrator: RetrainOrchestrator,
                 reference: ReferenceData, follower: RegistryFollower, monitor: DriftMonitor,
                 alarms: Alarms, publisher: MetricsPublisher, requests: RequestStats,
                 hub: Hub, feed: tuple[Background, ...]) -> None:
        self.settings, self.registry, self.router, self.log = settings, registry, router, log
        self.bus, self.orchestrator, self.reference = bus, orchestrator, reference
        self.follower, self.monitor, self.alarms = follower, monitor, alarms
        self.publisher, self.requests, self.hub, self.feed = publisher, requests, hub, feed
        self.name = settings.model_name
        self.started_at = datetime.now(UTC)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        champion = await asyncio.to_thread(self.registry.get_champion, self.name)
        if champion is None:
            raise ServiceUnavailableError(
                f"model {self.name!r} has no champion in {self.settings.database_url}: push "
                f"one first (`driftloop models push {self.name} MODEL --reference DATA --label "
                "COLUMN`, ModelRegistry.push_candidate, or `driftloop demo`)")
        await asyncio.to_thread(self.reference.start, champion)
        await self.follower.load(champion)
        assert self.router.champion is not None
        await self.monitor.start(champion, self.router.champion.model)
        self.publisher.publish_state(self.follower.generation)
        loop = asyncio.get_running_loop()
        background: list[Callable[[], Coroutine[Any, Any, None]]] = [
            self.follower.run, *(part.run for part in self.feed),
            lambda: self.orchestrator.run_forever(self.settings.poll_interval,
                                                  leads=self.monitor.leads),
            lambda: heartbeat.beat_forever(self.registry.engine, self.name,
                                           self.monitor.instance, started_at=self.started_at,
                                           drives_loop=self.monitor.leads)]
        if self.monitor.shares():
            background.append(self.monitor.share_forever)
        self._tasks = [loop.create_task(run()) for run in background]
        # What start-up built lives as long as the process: move it out of the cyclic
        # collector's way, so full collections under load stay short (p99 latency). A
        # served request allocates a few hundred container objects, so the default
        # threshold (700) ran a young collection every few requests: at 100,000 the
        # server spent 4-7 % less CPU per request (benchmarks/serve_bench.py, per-thread
        # CPU under the same load).
        gc.collect()
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.monitor.stop()
        with contextlib.suppress(Exception):  # best effort: a stale beat says the same
            await asyncio.to_thread(heartbeat.stopped, self.registry.engine,
                                    self.monitor.instance)
        await self.router.close()
        self.registry.engine.dispose()
        mark_process_dead(os.getpid())

    async def predict(self, features: Mapping[str, Any], request_id: str | None,
                      routing_key: str | None) -> tuple[str, Routed]:
        request_id = request_id or uuid.uuid4().hex
        routed = await self.router.predict(features, routing_key or request_id)
        self.monitor.offer(Observation(request_id, datetime.now(UTC), dict(features),
                                       routed.output, routed.version, routed.slot,
                                       routed.mirror, routed.mirror_version))
        return request_id, routed

    async def settle(self) -> None:
        """Wait (briefly) until the predictions answered so far are in the log."""
        await self.monitor.settle()

    async def refresh(self) -> bool:
        """Converge on the registry now (after an admin change). True if anything changed."""
        return await self.follower.refresh()

    def leads(self) -> bool:
        """Whether this process drives the retraining loop: the only one, or the drift
        leader among several workers."""
        return self.monitor.leads()

    def drift_report(self) -> dict[str, Any] | None:
        """The drift view over all traffic (the leader's merged one with several workers)."""
        return self.monitor.drift_report()

    def render_metrics(self, accept: str | None) -> tuple[bytes, str]:
        """The /metrics body, with the queue depths and drop counts of this moment."""
        return self.publisher.render(accept, self.monitor.observer)
