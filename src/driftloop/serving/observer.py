"""The observation path: after the response, features and outputs go to the drift
detector and the prediction log, in batches, off the request path.

A bounded queue decouples the two: when it is full an observation is dropped and counted
(``dropped``), so an overloaded drift detector or database never slows a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftloop.data.predictions import PredictionLogError, PredictionRecord
from driftloop.data.writer import BatchingWriter
from driftloop.drift import DriftDetector, DriftEvent
from driftloop.models.served import monitored_output

logger = logging.getLogger(__name__)

#: How long the observer waits for a mirrored (shadow) call before logging without it.
MIRROR_WAIT = 5.0
#: How long a batch of observations waits for company while fewer than ``batch`` are
#: queued. The detector, the Prometheus histograms and the writer each cost mostly per
#: call (a few dozen numpy calls per feature), and under load observations come in
#: bursts of one champion batch (32 rows with 32 clients): taking each burst alone
#: cost the observation path 22-26% of a server's throughput (issue 14). A settle()
#: (a label on its way) and stop() cut the wait short.
LINGER = 0.2


@dataclass
class Observation:
    request_id: str
    ts: datetime
    features: dict[str, Any]
    output: Any
    version: int
    slot: str
    mirror: asyncio.Future[Any] | None = None
    mirror_version: int | None = None


@dataclass
class _Settle:
    """A marker in the queue: resolved once everything queued before it is logged."""

    done: asyncio.Future[None]


class Observer:
    """Feeds observations to ``detector`` and ``writer`` from a background task."""

    def __init__(self, detector: DriftDetector, writer: BatchingWriter | None, model_name: str,
                 *, max_queue: int = 20_000, batch: int = 512,
                 on_alarms: Callable[[list[DriftEvent]], None] | None = None,
                 on_batch: Callable[[Sequence[Observation]], None] | None = None,
                 linger: float = LINGER) -> None:
        self.detector = detector
        self.linger = linger
        self._wake: asyncio.Future[None] | None = None  # set while a batch lingers
        self.writer = writer
        self.model_name = model_name
        self.batch = batch
        self.on_alarms = on_alarms
        self.on_batch = on_batch
        self.queue: asyncio.Queue[Observation | _Settle] = asyncio.Queue(maxsize=max_queue)
        self.dropped = 0
        self.rejected = 0
        self.observed = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="observer")
        self._task: asyncio.Task[None] | None = None

    def offer(self, observation: Observation) -> bool:
        try:
            self.queue.put_nowait(observation)
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        if self._wake is not None and self.queue.qsize() + 1 >= self.batch:
            self._stop_lingering()
        return True

    def _stop_lingering(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def settle(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until every observation offered before this
        call is in the prediction log: a label sent right after its answer can then find
        its prediction. Returns early, without error, when the queue is full or slow."""
        marker = _Settle(asyncio.get_running_loop().create_future())
        try:
            self.queue.put_nowait(marker)
        except asyncio.QueueFull:
            return
        self._stop_lingering()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(marker.done), timeout)

    async def on_thread(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the observer's own thread, in turn with the observations: the
        detector is only ever touched from there."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Process what is queued, then stop."""
        if self._task is not None:
            self.linger = 0.0
            self._stop_lingering()
            await self.queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            if isinstance(items[0], Observation):
                await self._company()
            while len(items) < self.batch and not self.queue.empty():
                items.append(self.queue.get_nowait())
            observations = [o for o in items if isinstance(o, Observation)]
            markers = [m for m in items if isinstance(m, _Settle)]
            try:
                mirrors = [o.mirror for o in observations if o.mirror is not None]
                if mirrors:
                    await asyncio.wait(mirrors, timeout=MIRROR_WAIT)
                if observations:
                    await loop.run_in_executor(self._executor, self._consume, observations)
                if markers and self.writer is not None:
                    await loop.run_in_executor(self._executor, self.writer.flush)
            except Exception:  # never let one bad batch stop the observation path
                logger.exception("observation batch failed")
            finally:
                for marker in markers:
                    if not marker.done.done():
                        marker.done.set_result(None)
                for _ in items:
                    self.queue.task_done()

    async def _company(self) -> None:
        """Wait up to ``linger`` seconds until a whole batch is queued (:meth:`offer` says
        so), a settle marker comes or the observer stops: one future and one timer."""
        if self.linger <= 0 or self.queue.qsize() + 1 >= self.batch:
            return
        loop = asyncio.get_running_loop()
        wake = self._wake = loop.create_future()
        timer = loop.call_later(self.linger, self._stop_lingering)
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None

    def _consume(self, items: list[Observation]) -> None:
        names = self.detector.feature_names
        columns = {name: [o.features.get(name) for o in items] for name in names}
        outputs = [monitored_output(o.output) for o in items]
        has_output = any(p.name == "output" for p in self.detector.profiles[len(names):])
        events = self.detector.observe(columns, output=outputs if has_output else None)
        self.observed += len(items)
        if events and self.on_alarms is not None:
            self.on_alarms(events)
        if self.on_batch is not None:
            self.on_batch(items)
        if self.writer is not None:
            for o in items:
                shadow = None
                if o.mirror is not None and o.mirror.done() and not o.mirror.cancelled():
                    shadow = {"version": o.mirror_version, "output": o.mirror.result()}
                record = PredictionRecord(o.request_id, o.ts, self.model_name, o.version, o.slot,
                                          o.features, o.output, shadow)
                try:
                    if not self.writer.add(record):
                        self.dropped += 1
                except PredictionLogError as exc:  # e.g. a client reused a request id
                    self.rejected += 1
                    logger.warning("prediction %s not logged: %s", o.request_id, exc)
