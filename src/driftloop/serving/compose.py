"""The composition root: :func:`build_service` builds every part of one server process.

Only this module knows how the parts fit together; each part gets what it uses through its
constructor and knows nothing of the others' construction. Building does no I/O beyond
opening the registry: :meth:`ModelService.start` loads the models.
"""

from __future__ import annotations

from driftloop.config import Settings
from driftloop.data.predictions import PredictionLog
from driftloop.events import EventBus
from driftloop.registry import ModelRegistry
from driftloop.serving.alarms import Alarms
from driftloop.serving.following import RegistryFollower
from driftloop.serving.history import FeedHistory, FeedRecorder
from driftloop.serving.hub import Hub
from driftloop.serving.monitor import DriftMonitor
from driftloop.serving.poller import StatePoller
from driftloop.serving.publishing import MetricsPublisher
from driftloop.serving.reference import ReferenceData
from driftloop.serving.router import Traffic, TrafficRouter
from driftloop.serving.service import ModelService
from driftloop.serving.view import LiveState, RequestStats
from driftloop.training.orchestrator import RetrainOrchestrator


def build_service(settings: Settings, registry: ModelRegistry | None = None) -> ModelService:
    """Every part of the server of ``settings.model_name``, wired, not yet started."""
    registry = registry or ModelRegistry.for_settings(settings)
    router = TrafficRouter(
        Traffic(settings.traffic_mode, settings.candidate_weight,  # type: ignore[arg-type]
                settings.shadow_fraction),
        candidate_timeout=settings.candidate_timeout, max_batch=settings.max_batch,
        max_wait_ms=settings.max_wait_ms, max_queue=settings.max_queue,
        max_queue_wait_ms=settings.max_queue_wait_ms)
    log = PredictionLog(registry.engine)
    bus = EventBus()
    orchestrator = RetrainOrchestrator(settings, registry, bus=bus)
    reference = ReferenceData(settings, registry)
    publisher = MetricsPublisher(router, settings.model_name)
    alarms = Alarms(bus, orchestrator, retrain_on_drift=settings.retrain_on_drift)
    monitor = DriftMonitor(settings, registry, log, bus, reference, alarms, publisher)
    follower = RegistryFollower(registry, router, reference,
                                poll_interval=settings.poll_interval,
                                on_champion=monitor.follow_reference,
                                on_change=publisher.publish_state)
    # A transition of the loop may have changed the registry: converge at once.
    orchestrator.on_transition = follower.wake
    requests = RequestStats()
    view = LiveState(registry, router, follower, monitor, alarms, orchestrator, log, requests)
    history = FeedHistory(registry.engine, settings.model_name)
    return ModelService(
        settings, registry=registry, router=router, log=log, bus=bus,
        orchestrator=orchestrator, reference=reference, follower=follower, monitor=monitor,
        alarms=alarms, publisher=publisher, requests=requests,
        hub=Hub(view, bus, history),
        feed=(FeedRecorder(history, bus, monitor.leads),
              StatePoller(view, bus, on_loop_state=publisher.set_loop_state)))
