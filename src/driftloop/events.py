"""EventBus: what happened in this process, for whoever listens (the dashboard's hub, tests).

Publishing never blocks and never fails: each subscriber has a bounded buffer, and one that
falls behind loses its buffered events and is marked *lagged* — its reader then resyncs
from a fresh snapshot of the state instead (the WebSocket hub does exactly that). Publish
may be called from any thread; subscribers read on an asyncio loop.

Events of other processes (several workers, several replicas) reach the dashboard through
the shared database, which every hub also polls: the bus is the fast path, not the only
one.

>>> import asyncio
>>> async def main():
...     bus = EventBus()
...     sub = bus.subscribe()
...     bus.publish("run", {"state": "TRAINING"})
...     event = await sub.get()
...     return event.topic, event.data
>>> asyncio.run(main())
('run', {'state': 'TRAINING'})
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    topic: str
    data: Any
    seq: int
    at: float


class Subscription:
    """One reader's bounded buffer of events."""

    def __init__(self, bus: EventBus, max_events: int) -> None:
        self._bus = bus
        self._buffer: deque[Event] = deque()
        self._max = max_events
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self.lagged = False  # events were lost since the reader last checked

    def _offer(self, event: Event) -> None:
        with self._lock:
            if len(self._buffer) >= self._max:
                self._buffer.clear()
                self.lagged = True
            self._buffer.append(event)
        self._loop.call_soon_threadsafe(self._ready.set)

    async def get(self) -> Event:
        """The next event (waits for one)."""
        while True:
            with self._lock:
                if self._buffer:
                    return self._buffer.popleft()
                self._ready.clear()
            await self._ready.wait()

    def take_lagged(self) -> bool:
        """Whether events were lost since the last call (then the reader should resync)."""
        with self._lock:
            lagged, self.lagged = self.lagged, False
            return lagged

    def close(self) -> None:
        self._bus._remove(self)


class EventBus:
    """In-process publish / subscribe with bounded, lossy-but-flagged subscribers."""

    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        self._lock = threading.Lock()
        self._seq = itertools.count(1)

    def publish(self, topic: str, data: Any) -> Event:
        event = Event(topic, data, next(self._seq), time.time())
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber._offer(event)
            except RuntimeError:  # its loop is closed: the reader is gone
                subscriber.close()
        return event

    def subscribe(self, max_events: int = 256) -> Subscription:
        """A new reader, on the running asyncio loop."""
        subscription = Subscription(self, max_events)
        with self._lock:
            self._subscribers.append(subscription)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)
