"""Drift alarms: from the detector to the dashboard and to the retraining loop.

The one path an alarm takes (docs/architecture.md draws it)::

    detector (observer thread) ──call_soon_threadsafe──► Alarms.raise_alarms (event loop)
    DriftLeader.step (leader, merged view of all workers) ──────────┘
        ├─► EventBus "alarm" ──► dashboard feed, feed history
        └─► RetrainOrchestrator.trigger ──► run row (persisted) + wake() ──► tick now

With several workers only the drift leader raises alarms, from its merged view of every
worker's window (the shared mechanism: :mod:`~driftloop.serving.drift_sync`); the leader
is also the process that drives the loop, so the trigger wakes its own orchestrator and no
second process has to find the run by polling the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from driftloop.drift import DriftEvent
from driftloop.events import EventBus
from driftloop.training.orchestrator import RetrainOrchestrator

logger = logging.getLogger(__name__)


class Alarms:
    """The open drift alarms of this process, and what raising one sets off."""

    def __init__(self, bus: EventBus, orchestrator: RetrainOrchestrator, *,
                 retrain_on_drift: bool) -> None:
        self.bus, self.orchestrator = bus, orchestrator
        self.retrain_on_drift = retrain_on_drift
        self.open: list[DriftEvent] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop that alarms from other threads are handed to."""
        self._loop = loop

    def from_thread(self, events: Sequence[DriftEvent]) -> None:
        """Alarms of this process's own detector, raised on the observer's thread."""
        assert self._loop is not None, "bind() the event loop first"
        self._loop.call_soon_threadsafe(self._spawn, list(events))

    def _spawn(self, events: list[DriftEvent]) -> None:
        task = asyncio.get_running_loop().create_task(self.raise_alarms(events))
        self._pending.add(task)  # a task nobody holds may be collected mid-flight
        task.add_done_callback(self._pending.discard)

    async def raise_alarms(self, events: Sequence[DriftEvent]) -> None:
        """Record and publish each alarm and, when configured, start (or join) a retrain."""
        for event in events:
            self.open.append(event)
            self.bus.publish("alarm", event.to_dict())
            if not self.retrain_on_drift:
                continue
            features = ", ".join(event.drifted_features) or "the output"
            result = await asyncio.to_thread(
                self.orchestrator.trigger, "drift",
                f"drift in {features} after {event.events_seen} events", event.id)
            logger.info("drift alarm %s: %s", event.id,
                        result.ignored or ("attached to the running retraining"
                                           if result.attached else "retraining started"))

    def clear(self) -> None:
        """A new reference: the old one's alarms are what the new model was trained on."""
        self.open.clear()
