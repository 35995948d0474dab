"""The once-a-second state poller: turns what changed into events on the bus.

The state (champion, loop, alarms), the runs, the lineage and — on a worker that does not
lead the drift view — each new evaluation in the leader's merged drift report (all read
from the shared database, so a worker that does not drive the loop still shows it), the
traffic split and a metrics point every second, with the latency percentiles of the last
few seconds. It also sets the loop-state gauge. The WebSocket feed
(:mod:`~driftloop.serving.hub`) only relays these events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from driftloop.events import EventBus
from driftloop.serving.view import StateView, state_of

logger = logging.getLogger(__name__)

LATENCY_WINDOW_S = 5.0  # the dashboard's p50 / p99: over the last few seconds
LABEL_COUNT_EVERY = 5  # ticks between counts of the labelled predictions
CHANGED_RUNS = 3  # read every second to notice changes: only the newest ones change
INTERVAL_S = 1.0


class StatePoller:
    """Publishes the changes of ``view`` on ``bus`` every second."""

    def __init__(self, view: StateView, bus: EventBus,
                 on_loop_state: Callable[[str], None] = lambda state: None) -> None:
        self.view, self.bus, self.on_loop_state = view, bus, on_loop_state
        self._last: dict[str, Any] = {}
        self._requests = 0
        self._errors = 0
        self._ticks = 0
        self._labelled = 0

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # the feed must outlive a database hiccup
                logger.exception("the dashboard feed failed to refresh; retrying")
            await asyncio.sleep(INTERVAL_S)

    async def tick(self) -> None:
        view, bus = self.view, self.bus
        if view.reads_leader():
            # A follower among several workers: the leader's new evaluations, read back.
            report = await asyncio.to_thread(view.drift_report)
            # A new evaluation, not the refresh the leader stores between evaluations.
            evaluated = (report or {}).get("evaluated_pane_id")
            if evaluated is not None and evaluated != self._last.get("evaluated"):
                bus.publish("drift", report)
                self._last["evaluated"] = evaluated
        state, runs = await asyncio.gather(state_of(view),
                                           asyncio.to_thread(view.runs, CHANGED_RUNS))
        if state != self._last.get("state"):
            bus.publish("state", state)
            self.on_loop_state(state["loop"]["state"])
        for run in runs:
            if run != self._last.get(f"run:{run['id']}"):
                bus.publish("run", run)
                self._last[f"run:{run['id']}"] = run
        generation = view.generation
        if generation != self._last.get("generation"):
            bus.publish("lineage", await asyncio.to_thread(view.lineage))
        traffic = view.traffic()
        shadow = shadow_of(runs)
        if traffic != self._last.get("traffic") or shadow != self._last.get("shadow"):
            point = {"at": time.time(), **traffic}
            bus.publish("traffic", {"current": traffic, "point": point, "shadow": shadow})
        if self._ticks % LABEL_COUNT_EVERY == 0:  # a COUNT over the log: not every second
            self._labelled = await asyncio.to_thread(view.labelled)
        self._ticks += 1
        bus.publish("metrics", self._metrics_point())
        self._last.update(state=state, generation=generation, traffic=traffic, shadow=shadow)

    def _metrics_point(self) -> dict[str, Any]:
        view, now = self.view, time.time()
        ordered = view.requests.since(now - LATENCY_WINDOW_S)
        total = view.answered()
        previous, self._requests = self._requests, total
        errors, self._errors = view.requests.errors - self._errors, view.requests.errors
        return {"at": now, "requests_per_s": float(max(0, total - previous)) if previous else 0.0,
                "latency_p50_ms": _quantile(ordered, 0.5),
                "latency_p99_ms": _quantile(ordered, 0.99),
                "errors_per_s": float(errors), **view.observations(),
                "labelled": self._labelled}


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def shadow_of(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The active run's shadow evidence, for the traffic panel."""
    active = next((r for r in runs if r.get("active")), None)
    if active is None or not active["evidence"].get("shadow"):
        return None
    return {"run_id": active["id"], **active["evidence"]["shadow"]}
