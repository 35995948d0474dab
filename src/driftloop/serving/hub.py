"""The dashboard's live feed: ``WS /ws`` per dashboard/PROTOCOL.md.

The feed only fans out: a snapshot on connect, then each event on the bus as a typed
delta. What changed is found by the state poller (:mod:`~driftloop.serving.poller`); the
drift evaluations of a single process or of the leader, and run transitions, arrive on the
bus as they happen. The hub reads the server through a read-only
:class:`~driftloop.serving.view.StateView` and knows no service class. Each client relays
bus events as typed deltas; a client that falls behind (its bounded buffer overflowed) gets a
fresh snapshot instead of the deltas it missed, and no client ever slows another or the
server.

The hub keeps no history of its own: a snapshot reads it from the database
(serving/history.py), where the process that evaluates drift records it, so a client that
connects late, to any worker or after a restart, is told the whole story.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from driftloop.events import Event, EventBus
from driftloop.serving.history import FeedHistory, alarm, drift_point
from driftloop.serving.poller import shadow_of
from driftloop.serving.schemas import DeltaFrames, frame_data
from driftloop.serving.view import StateView, state_of

logger = logging.getLogger(__name__)

CLIENT_BUFFER = 256
RUNS = 20  # in a snapshot


class Hub:
    """Snapshots for clients, and each client's relay of the bus."""

    def __init__(self, view: StateView, bus: EventBus, history: FeedHistory) -> None:
        self.view, self.bus, self.history = view, bus, history
        self._deltas = DeltaFrames(self.frame)  # each checked once, not once per client

    # ------------------------------------------------------------------ what clients see
    async def snapshot(self) -> dict[str, Any]:
        view = self.view
        state, runs, lineage, history, report = await asyncio.gather(
            state_of(view), asyncio.to_thread(view.runs, RUNS),
            asyncio.to_thread(view.lineage), asyncio.to_thread(self.history.read),
            asyncio.to_thread(view.drift_report))
        # The detector has no report between a promotion and its first evaluation against
        # the new reference: the newest one recorded is what a watching client still shows.
        report = report or next(iter(history["report"]), None)
        return frame_data("snapshot", {"model": view.name, "state": state,
                "drift": {"report": report, "history": history["drift"],
                          "alarms": history["alarm"][::-1],  # newest first
                          "thresholds": view.thresholds()},
                "runs": runs, "lineage": lineage,
                "traffic": {"current": view.traffic(), "history": history["traffic"],
                            "shadow": shadow_of(runs)},
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
        subscription = self.bus.subscribe(CLIENT_BUFFER)
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
