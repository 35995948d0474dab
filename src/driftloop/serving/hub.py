"""The dashboard's live feed: ``WS /ws`` per dashboard/PROTOCOL.md.

One poller per process turns what changed into events on the service's EventBus: the state
(champion, loop, alarms), the runs, the lineage and — on a worker that does not lead the
drift view — each new evaluation in the leader's merged drift report (all read from the
shared database, so a worker that does not drive the loop still shows it), the traffic
split and a metrics point every second. The drift evaluations of a single process or of the
leader, and run transitions, arrive on the bus as they happen. Each client relays bus
events as typed deltas; a client that falls behind (its bounded buffer overflowed) gets a
fresh snapshot instead of the deltas it missed, and no client ever slows another or the
server.

The hub keeps no history of its own: a snapshot reads it from the database
(serving/history.py), where the process that evaluates drift records it, so a client that
connects late, to any worker or after a restart, is told the whole story.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from fastapi import WebSocket, WebSocketDisconnect

from driftloop.events import Event
from driftloop.serving.history import FeedHistory, FeedRecorder, alarm, drift_point
from driftloop.serving.schemas import DeltaFrames, frame_data

if TYPE_CHECKING:
    from driftloop.serving.service import ModelService

logger = logging.getLogger(__name__)

CLIENT_BUFFER = 256
LATENCY_WINDOW_S = 5.0  # the dashboard's p50 / p99: over the last few seconds
LABEL_COUNT_EVERY = 5  # ticks between counts of the labelled predictions
RUNS = 20  # in a snapshot
CHANGED_RUNS = 3  # read every second to notice changes: only the newest ones change


class Hub:
    """Snapshots for clients, and the poller that publishes changes."""

    def __init__(self, service: ModelService) -> None:
        self.service = service
        self.history = FeedHistory(service.registry.engine, service.name)
        self.recorder = FeedRecorder(self.history, service.bus, service.leads)
        self._last: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._requests = 0
        self._errors = 0
        self._ticks = 0
        self._labelled = 0
        self._deltas = DeltaFrames(self.frame)  # each checked once, not once per client

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.recorder.run()), loop.create_task(self._poll())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ what clients see
    async def snapshot(self) -> dict[str, Any]:
        state, runs, lineage, history, report = await asyncio.gather(
            self._state(), self._runs(), self._lineage(),
            asyncio.to_thread(self.history.read),
            asyncio.to_thread(self.service.drift_report))
        # The detector has no report between a promotion and its first evaluation against
        # the new reference: the newest one recorded is what a watching client still shows.
        report = report or next(iter(history["report"]), None)
        return frame_data("snapshot", {"model": self.service.name, "state": state,
                "drift": {"report": report, "history": history["drift"],
                          "alarms": history["alarm"][::-1],  # newest first
                          "thresholds": self._thresholds()},
                "runs": runs, "lineage": lineage,
                "traffic": {"current": self._traffic(), "history": history["traffic"],
                            "shadow": _shadow(runs)},
                "metrics": {"history": history["metrics"]}})

    def frame(self, event: Event) -> dict[str, Any] | None:
        """The delta a bus event becomes (None: not for the dashboard)."""
        data = event.data
        if event.topic == "drift":
            return {"type": "drift", "data": {"point": drift_point(data), "report": data,
                                              "alarms": []}}
        if event.topic == "alarm":
            return {"type": "drift", "data": {"point": None, "report": data["report"],
                                              "alarms": [alarm(data)]}}
        if event.topic in ("state", "run", "log", "lineage", "traffic", "metrics"):
            return {"type": event.topic, "data": data}
        return None

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        subscription = self.service.bus.subscribe(CLIENT_BUFFER)
        seq = 0

        async def send(kind: str, data: Any) -> None:
            nonlocal seq
            seq += 1
            await websocket.send_json({"type": kind, "seq": seq, "at": time.time(),
                                       "data": data})

        async def listen() -> None:  # answer pings; notice the client leaving
            while True:
                message = await websocket.receive_json()
                if isinstance(message, dict) and message.get("type") == "ping":
                    await send("pong", {})

        listener = asyncio.create_task(listen())
        try:
            await send("snapshot", await self.snapshot())
            while not listener.done():
                getter = asyncio.create_task(subscription.get())
                done, _ = await asyncio.wait({getter, listener},
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                if subscription.take_lagged():
                    await send("snapshot", await self.snapshot())
                    continue
                frame = self._deltas(getter.result())
                if frame is not None:
                    await send(frame["type"], frame["data"])
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            listener.cancel()
            subscription.close()

    # ------------------------------------------------------------------ the poller
    async def _poll(self) -> None:
        while True:
            try:
                await self._tick()
            except Exception:  # the feed must outlive a database hiccup
                logger.exception("the dashboard feed failed to refresh; retrying")
            await asyncio.sleep(1.0)

    async def _tick(self) -> None:
        bus = self.service.bus
        if self.service.shipper is not None and not self.service.leads():
            # A follower among several workers: the leader's new evaluations, read back.
            report = await asyncio.to_thread(self.service.drift_report)
            # A new evaluation, not the refresh the leader stores between evaluations.
            evaluated = (report or {}).get("evaluated_pane_id")
            if evaluated is not None and evaluated != self._last.get("evaluated"):
                bus.publish("drift", report)
                self._last["evaluated"] = evaluated
        state, runs = await asyncio.gather(self._state(), self._runs(CHANGED_RUNS))
        if state != self._last.get("state"):
            bus.publish("state", state)
            if self.service.metrics is not None:
                self.service.metrics.set_loop_state(state["loop"]["state"])
        for run in runs:
            if run != self._last.get(f"run:{run['id']}"):
                bus.publish("run", run)
                self._last[f"run:{run['id']}"] = run
        generation = self.service.generation
        if generation != self._last.get("generation"):
            bus.publish("lineage", await self._lineage())
        traffic = self._traffic()
        shadow = _shadow(runs)
        if traffic != self._last.get("traffic") or shadow != self._last.get("shadow"):
            point = {"at": time.time(), **traffic}
            bus.publish("traffic", {"current": traffic, "point": point, "shadow": shadow})
        if self._ticks % LABEL_COUNT_EVERY == 0:  # a COUNT over the log: not every second
            self._labelled = await asyncio.to_thread(self.service.log.count, True)
        self._ticks += 1
        bus.publish("metrics", self._metrics_point())
        self._last.update(state=state, generation=generation, traffic=traffic, shadow=shadow)

    async def _state(self) -> dict[str, Any]:
        service = self.service
        router = service.router

        def slot(s: Any) -> dict[str, Any] | None:
            return None if s is None else {"version": s.version, "queue_depth": s.queue.depth}

        return {"model": service.name, "generation": service.generation,
                "champion": slot(router.champion), "candidate": slot(router.candidate),
                "traffic": self._traffic(), "alarms": len(service.alarms),
                "loop": await asyncio.to_thread(service.orchestrator.state)}

    async def _runs(self, limit: int = RUNS) -> list[dict[str, Any]]:
        runs = await asyncio.to_thread(self.service.orchestrator.runs.list, limit)
        return [r.to_dict() for r in runs]

    async def _lineage(self) -> dict[str, Any]:
        registry, name = self.service.registry, self.service.name
        versions, lineage = await asyncio.gather(
            asyncio.to_thread(registry.list_versions, name),
            asyncio.to_thread(registry.lineage, name))
        return {"model": name, "versions": [v.to_dict() for v in versions],
                "lineage": lineage}

    def _traffic(self) -> dict[str, Any]:
        router = self.service.router
        return {**vars(router.traffic),
                "shares": router.traffic.shares(router.candidate is not None)}

    def _thresholds(self) -> dict[str, float]:
        detector = self.service.detector
        policy = detector.policy if detector is not None else None
        floor = policy.effect_floor if policy is not None else 0.0
        effect = policy.effect if policy is not None else "js"
        return {"psi": floor if effect == "psi" else 0.2, "js": floor if effect == "js" else 0.1,
                "ks": floor if effect == "ks" else 0.1}

    def _metrics_point(self) -> dict[str, Any]:
        service = self.service
        now = time.time()
        recent = [s for t, s in service.latencies if t >= now - LATENCY_WINDOW_S]
        total = sum(service.router.counters.by_slot.values())
        previous, self._requests = self._requests, total
        errors, self._errors = service.errors - self._errors, service.errors
        observer = service.observer
        ordered = sorted(recent)
        return {"at": now, "requests_per_s": float(max(0, total - previous)) if previous else 0.0,
                "latency_p50_ms": _quantile(ordered, 0.5), "latency_p99_ms": _quantile(ordered,
                                                                                      0.99),
                "errors_per_s": float(errors), "observed": observer.observed if observer else 0,
                "dropped": observer.dropped if observer else 0, "labelled": self._labelled}


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _shadow(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    active = next((r for r in runs if r.get("active")), None)
    if active is None or not active["evidence"].get("shadow"):
        return None
    return {"run_id": active["id"], **active["evidence"]["shadow"]}
