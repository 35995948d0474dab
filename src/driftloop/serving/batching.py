"""BatchingQueue: dynamic micro-batching in front of a model's ``predict_batch``.

Under load, requests wait at most ``max_wait_ms`` for company; a batch of up to
``max_batch`` rows then runs on one worker thread, off the event loop. A request that
arrives alone after a batch of one does not wait: at low traffic there is no company to
wait for, so the wait would only add latency. The queue is bounded: when
``max_queue`` rows are waiting, :meth:`submit` raises :class:`QueueFullError` at once (the
server answers 503 with Retry-After) instead of growing without limit.

>>> import asyncio
>>> async def main():
...     q = BatchingQueue(lambda rows: [r["x"] * 2 for r in rows], max_wait_ms=1)
...     await q.start()
...     out = await asyncio.gather(*(q.submit({"x": i}) for i in range(3)))
...     await q.stop()
...     return out
>>> asyncio.run(main())
[0, 2, 4]
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

PredictBatch = Callable[[Sequence[Mapping[str, Any]]], Sequence[Any]]


class QueueFullError(RuntimeError):
    """The batching queue is full: retry shortly (HTTP 503 with Retry-After)."""


class BatchingQueue:
    """Collects single rows into batches for one model; one batch runs at a time."""

    def __init__(self, predict_batch: PredictBatch, *, max_batch: int = 64,
                 max_wait_ms: float = 10.0, max_queue: int = 2048, name: str = "model") -> None:
        if max_batch < 1 or max_queue < max_batch or max_wait_ms < 0:
            raise ValueError("need max_batch >= 1, max_queue >= max_batch and max_wait_ms >= 0")
        self.predict_batch = predict_batch
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._queue: asyncio.Queue[tuple[Mapping[str, Any], asyncio.Future[Any]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{name}")
        self.batches = 0
        self.rows = 0
        self._last_batch = 1

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker."""
        if self._task is not None and self._queue is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, row: Mapping[str, Any]) -> Any:
        """The model's output for ``row``; QueueFullError when the queue is full."""
        if self._queue is None:
            raise RuntimeError("the batching queue is not started")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((row, future))
        except asyncio.QueueFull:
            raise QueueFullError(f"{self.max_queue} requests are waiting") from None
        return await future

    async def predict_many(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Outputs for a whole batch request, in order (each row queued like a single one)."""
        return list(await asyncio.gather(*(self.submit(r) for r in rows)))

    async def _run(self) -> None:
        assert self._queue is not None
        queue, loop = self._queue, asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            busy = self._last_batch > 1 or not queue.empty()
            deadline = loop.time() + (self.max_wait if busy else 0.0)
            while len(batch) < self.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            self._last_batch = len(batch)
            try:
                await self._execute(batch)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _execute(self, batch: list[tuple[Mapping[str, Any], asyncio.Future[Any]]]) -> None:
        rows = [row for row, _ in batch]
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.predict_batch, rows)
            if len(outputs) != len(rows):
                raise RuntimeError(f"predict_batch returned {len(outputs)} outputs for "
                                   f"{len(rows)} rows")
        except Exception as exc:
            if len(batch) > 1:  # one bad row must not fail its neighbours: retry one by one
                for item in batch:
                    await self._execute([item])
                return
            _, future = batch[0]
            if not future.done():
                future.set_exception(exc)
            return
        self.batches += 1
        self.rows += len(rows)
        for (_, future), output in zip(batch, outputs, strict=True):
            if not future.done():
                future.set_result(output)
