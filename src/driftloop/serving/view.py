"""What the dashboard's feed may read of a running server: :class:`StateView`.

The feed (:mod:`~driftloop.serving.hub`) and its poller (:mod:`~driftloop.serving.poller`)
depend on this small read-only view, not on the service: they cannot change what they
show, and they can be tested on a stand-in. ``GET /api/state`` reads its core through
:func:`state_of` too, so the route and the feed's ``state`` never tell two stories.
:class:`LiveState` is the server's view, read from its parts as they are at each call.
Methods marked *blocking* read the database: call them in a thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Protocol

from driftloop.data.predictions import PredictionLog
from driftloop.registry import ModelRegistry
from driftloop.serving.alarms import Alarms
from driftloop.serving.following import RegistryFollower
from driftloop.serving.monitor import DriftMonitor
from driftloop.serving.router import Slot, TrafficRouter
from driftloop.training.orchestrator import RetrainOrchestrator


class RequestStats:
    """Recent answered requests and the failed ones: the dashboard's live latency and
    error rate (Prometheus has the full histograms)."""

    def __init__(self, keep: int = 20_000) -> None:
        self.latencies: deque[tuple[float, float]] = deque(maxlen=keep)  # (time, seconds)
        self.errors = 0

    def answered(self, seconds: float) -> None:
        self.latencies.append((time.time(), seconds))

    def failed(self) -> None:
        self.errors += 1

    def since(self, start: float) -> list[float]:
        """The latencies (seconds) of requests answered at or after ``start``, sorted."""
        return sorted(s for t, s in list(self.latencies) if t >= start)


class StateView(Protocol):
    """What the feed and ``GET /api/state`` show: read-only, and all of it cheap unless
    marked blocking."""

    @property
    def name(self) -> str: ...
    @property
    def generation(self) -> int: ...
    @property
    def requests(self) -> RequestStats: ...
    def slots(self) -> dict[str, dict[str, Any] | None]: ...
    def traffic(self) -> dict[str, Any]: ...
    def alarm_count(self) -> int: ...
    def thresholds(self) -> dict[str, float]: ...
    def answered(self) -> int: ...
    def observations(self) -> dict[str, int]: ...
    def reads_leader(self) -> bool: ...
    def leads(self) -> bool: ...
    def loop_state(self) -> dict[str, Any]: ...  # blocking
    def newer_format_workers(self) -> dict[str, int]: ...  # blocking
    def runs(self, limit: int) -> list[dict[str, Any]]: ...  # blocking
    def lineage(self) -> dict[str, Any]: ...  # blocking
    def drift_report(self) -> dict[str, Any] | None: ...  # blocking
    def labelled(self) -> int: ...  # blocking


async def state_of(view: StateView) -> dict[str, Any]:
    """The ``state`` frame, and the core of ``GET /api/state``: champion, candidate,
    traffic, alarms, the loop, and the workers a newer driftloop runs."""
    loop, newer = await asyncio.to_thread(_stored_state, view)
    return {"model": view.name, "generation": view.generation, **view.slots(),
            "traffic": view.traffic(), "alarms": view.alarm_count(), "loop": loop,
            "newer_format_workers": newer}


def _stored_state(view: StateView) -> tuple[dict[str, Any], dict[str, int]]:
    """The state's parts read from the database, in one trip to a thread."""
    return view.loop_state(), view.newer_format_workers()


class LiveState:
    """The running server's :class:`StateView`."""

    def __init__(self, registry: ModelRegistry, router: TrafficRouter,
                 follower: RegistryFollower, monitor: DriftMonitor, alarms: Alarms,
                 orchestrator: RetrainOrchestrator, log: PredictionLog,
                 requests: RequestStats) -> None:
        self._registry, self._router, self._follower = registry, router, follower
        self._monitor, self._alarms, self._orchestrator = monitor, alarms, orchestrator
        self._log, self._requests = log, requests
        self._name = follower.name

    @property
    def name(self) -> str:
        return self._name

    @property
    def generation(self) -> int:
        return self._follower.generation

    @property
    def requests(self) -> RequestStats:
        return self._requests

    def slots(self) -> dict[str, dict[str, Any] | None]:
        def slot(s: Slot | None) -> dict[str, Any] | None:
            return None if s is None else {"version": s.version, "queue_depth": s.queue.depth}

        return {"champion": slot(self._router.champion),
                "candidate": slot(self._router.candidate)}

    def traffic(self) -> dict[str, Any]:
        router = self._router
        return {**vars(router.traffic),
                "shares": router.traffic.shares(router.candidate is not None)}

    def alarm_count(self) -> int:
        return len(self._alarms.open)

    def thresholds(self) -> dict[str, float]:
        detector = self._monitor.detector
        policy = detector.policy if detector is not None else None
        floor = policy.effect_floor if policy is not None else 0.0
        effect = policy.effect if policy is not None else "js"
        return {"psi": floor if effect == "psi" else 0.2, "js": floor if effect == "js" else 0.1,
                "ks": floor if effect == "ks" else 0.1}

    def answered(self) -> int:
        return sum(self._router.counters.by_slot.values())

    def observations(self) -> dict[str, int]:
        observer = self._monitor.observer
        return {"observed": observer.observed if observer else 0,
                "dropped": observer.dropped if observer else 0}

    def reads_leader(self) -> bool:
        return self._monitor.shares() and not self._monitor.leads()

    def leads(self) -> bool:
        return self._monitor.leads()

    def loop_state(self) -> dict[str, Any]:
        return self._orchestrator.state()

    def newer_format_workers(self) -> dict[str, int]:
        return self._monitor.newer_format_workers()

    def runs(self, limit: int) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self._orchestrator.runs.list(limit)]

    def lineage(self) -> dict[str, Any]:
        versions = self._registry.list_versions(self._name)
        return {"model": self._name, "versions": [v.to_dict() for v in versions],
                "lineage": self._registry.lineage(self._name)}

    def drift_report(self) -> dict[str, Any] | None:
        return self._monitor.drift_report()

    def labelled(self) -> int:
        return self._log.count(True)
