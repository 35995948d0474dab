"""BatchingQueue: dynamic micro-batching in front of a model's ``predict_batch``.

Under load, requests wait at most ``max_wait_ms`` for company; a batch of up to
``max_batch`` rows then runs on one worker thread, off the event loop. A request that
arrives alone after a batch of one does not wait: at low traffic there is no company to
wait for, so the wait would only add latency. Nor does a batch wait through a lull: it
runs once no row has come for :data:`LULL_GAPS` times the usual gap between rows (a
moving average; at least :data:`MIN_LULL_MS`). Closed-loop clients send their next
requests in a burst after each batch's answers, and then nothing comes until the batch
is scored: with 32 clients and ``max_wait_ms`` 10, every batch held all 32 rows within
about a millisecond and then waited 9 more for none (issue 14, the same server
interleaved: 40-52 % more requests/s with the rule and 2-9 % less CPU per request).
Steady traffic keeps filling the batch, since a gap of eight average gaps is rare
(e^-8, 0.03 %, for random arrivals: with a 4 ms model and 1,500 to 6,000 random requests
a second, batches held 1-2 % fewer rows than without the rule; with four gaps, 5-8 %
fewer).

A *patient* row (:meth:`enqueue` with ``patient=True``: a shadow mirror, whose answer no
client waits for) lets a batch of patient rows only wait ``patient_wait_ms`` for company
instead: a model's cost is mostly per call, not per row, so the candidate scoring every
request in shadow mode runs full batches at half the calls when the champion's batches
are half full (issue 14: 32 clients, batches of 64). A row a client waits for, arriving
while patient rows wait, runs them at once.

Admission is decided when a row arrives, so an overloaded server answers 503 with
Retry-After at once instead of queueing work it will serve too late. A row is refused when
``max_queue`` rows are waiting, or when the rows ahead of it would take longer than
``max_queue_wait_ms`` to score (the queue depth times the measured seconds per row, a
moving average over recent batches): the target is a latency, not only a count, so many
concurrent clients get fast answers or fast refusals rather than slow answers. A queue
always takes one full batch, and anything (up to ``max_queue``) when it is empty, so a
slow model or a large request is never refused outright.

A multi-row request is admitted whole or not at all: :meth:`admission` checks room for
all its rows at once and reserves it, so a refused batch leaves no trace (no row scored,
none logged).

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
import contextvars
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from driftloop.errors import UnavailableError

PredictBatch = Callable[[Sequence[Mapping[str, Any]]], Sequence[Any]]
#: A queued row: the row, the future of its output, and whether it is patient.
_Item = tuple[Mapping[str, Any], asyncio.Future[Any], bool]


class QueueFullError(UnavailableError, RuntimeError):
    """The batching queue is full: retry shortly (HTTP 503 with Retry-After)."""


#: Weight of the newest batch in the moving average of seconds per row.
EWMA = 0.2
#: A batch a client waits for stops waiting for company after this many average gaps
#: between rows with no row (a lull), or ``MIN_LULL_MS``, whichever is longer.
LULL_GAPS = 8.0
MIN_LULL_MS = 0.5
#: Weight of the newest gap in the moving average of gaps between rows (each gap counted
#: at most ``max_wait_ms``, so the lull between bursts fades within a burst).
GAP_EWMA = 0.2


class _Reservation:
    """Room held in one queue for the rows of one admitted request."""

    def __init__(self, queue: BatchingQueue, rows: int) -> None:
        self.queue, self.rows = queue, rows


_reservation: contextvars.ContextVar[_Reservation | None] = contextvars.ContextVar(
    "driftloop_reservation", default=None)


class BatchingQueue:
    """Collects single rows into batches for one model; one batch runs at a time."""

    def __init__(self, predict_batch: PredictBatch, *, max_batch: int = 64,
                 max_wait_ms: float = 10.0, max_queue: int = 2048,
                 max_queue_wait_ms: float | None = None, patient_wait_ms: float | None = None,
                 name: str = "model") -> None:
        patient_wait_ms = max_wait_ms if patient_wait_ms is None else patient_wait_ms
        if max_batch < 1 or max_queue < max_batch or max_wait_ms < 0 or patient_wait_ms < 0:
            raise ValueError("need max_batch >= 1, max_queue >= max_batch, max_wait_ms >= 0 "
                             "and patient_wait_ms >= 0")
        if max_queue_wait_ms is not None and max_queue_wait_ms <= 0:
            raise ValueError("max_queue_wait_ms must be > 0 (or None: no latency target)")
        self.predict_batch = predict_batch
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.patient_wait = patient_wait_ms / 1000.0
        self.max_queue = max_queue
        self.max_queue_wait = None if max_queue_wait_ms is None else max_queue_wait_ms / 1000
        self.row_seconds = 0.0  # moving average of a batch's duration per row
        self._reserved = 0
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{name}")
        self.batches = 0
        self.rows = 0
        self._last_batch = 1
        self._wake: asyncio.Future[None] | None = None  # set while a batch waits for company
        self._last_arrival = 0.0  # loop time of the latest row
        self._timer: asyncio.TimerHandle | None = None  # the gathering batch's
        self._gap = 0.0  # moving average of the gaps between rows, seconds
        self._wanted = 0  # rows the waiting batch still has room for
        self._patient = False  # whether the waiting batch holds patient rows only

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    @property
    def expected_wait(self) -> float:
        """Seconds the rows waiting now are expected to take to score."""
        return (self.depth + self._reserved) * self.row_seconds

    def _refusal(self, rows: int) -> str | None:
        """Why ``rows`` more rows cannot be admitted now, or None."""
        ahead = self.depth + self._reserved
        if ahead + rows > self.max_queue:
            return f"{ahead} rows are waiting (at most {self.max_queue})"
        if self.max_queue_wait is not None and ahead > 0 and ahead + rows > self.max_batch:
            wait = (ahead + rows) * self.row_seconds
            if wait > self.max_queue_wait:
                return (f"the rows ahead would take {wait * 1000:.0f} ms to score (target "
                        f"{self.max_queue_wait * 1000:.0f} ms)")
        return None

    @contextlib.contextmanager
    def admission(self, rows: int) -> Iterator[None]:
        """Admit ``rows`` rows at once or raise QueueFullError; inside the block, this
        task's (and its child tasks') :meth:`submit` calls use the room reserved."""
        if self._queue is None:
            raise RuntimeError("the batching queue is not started")
        refusal = self._refusal(rows)
        if refusal is not None:
            raise QueueFullError(refusal)
        reservation = _Reservation(self, rows)
        self._reserved += rows
        token = _reservation.set(reservation)
        try:
            yield
        finally:
            _reservation.reset(token)
            self._reserved -= reservation.rows  # the room its rows did not use

    async def start(self) -> None:
        self._queue = asyncio.Queue()  # bounded by admission, not by maxsize
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker."""
        if self._task is not None and self._queue is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    def enqueue(self, row: Mapping[str, Any], *, patient: bool = False) -> asyncio.Future[Any]:
        """Queue ``row`` now and return the future of its output; QueueFullError when the
        queue is full. No coroutine and no task: the request path's cheapest hand-off.
        ``patient``: no client waits for this answer (see the module's docstring)."""
        queue = self._queue
        if queue is None:
            raise RuntimeError("the batching queue is not started")
        reservation = _reservation.get()
        if reservation is not None and reservation.queue is self and reservation.rows > 0:
            reservation.rows -= 1
            self._reserved -= 1
        else:
            refusal = self._refusal(1)
            if refusal is not None:
                raise QueueFullError(refusal)
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._last_arrival:  # the first row ever has no gap before it
            self._gap += GAP_EWMA * (min(now - self._last_arrival, self.max_wait) - self._gap)
        self._last_arrival = now
        future: asyncio.Future[Any] = loop.create_future()
        queue.put_nowait((row, future, patient))
        wake = self._wake
        if (wake is not None and (queue.qsize() >= self._wanted or (self._patient and not patient))
                and not wake.done()):
            wake.set_result(None)  # the batch being gathered is full, or a client waits
        return future

    async def submit(self, row: Mapping[str, Any]) -> Any:
        """The model's output for ``row``; QueueFullError when the queue is full."""
        return await self.enqueue(row)

    async def predict_many(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Outputs for a whole batch request, in order (each row queued like a single one)."""
        return list(await asyncio.gather(*(self.submit(r) for r in rows)))

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            busy = self._last_batch > 1 or not queue.empty()
            self._take(batch)
            patient = all(item[2] for item in batch)
            wait = self.patient_wait if patient else self.max_wait
            if busy and len(batch) < self.max_batch and wait > 0:
                await self._company(self.max_batch - len(batch), wait, patient)
                self._take(batch)
            self._last_batch = len(batch)
            try:
                await self._execute(batch)
            finally:
                for _ in batch:
                    queue.task_done()

    def _take(self, batch: list[_Item]) -> None:
        """Add the rows already queued to ``batch``, up to a full batch."""
        assert self._queue is not None
        queue = self._queue
        while len(batch) < self.max_batch and not queue.empty():
            batch.append(queue.get_nowait())

    async def _company(self, wanted: int, wait: float, patient: bool) -> None:
        """Wait until ``wanted`` more rows are queued (:meth:`enqueue` says so), ``wait``
        seconds have passed, rows stop coming (a lull; not for a ``patient`` batch, whose
        rows no client waits for) or, for a patient batch, a row a client waits for comes.
        One future and one timer at a time per batch, where waiting for each row with
        ``asyncio.wait_for`` made a task and a timer per row."""
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[None] = loop.create_future()
        self._wake, self._wanted, self._patient = wake, wanted, patient
        if patient:
            self._timer = loop.call_later(wait, _resolve, wake)
        else:
            self._lull(wake, loop.time() + wait)
        try:
            await wake
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._wake, self._patient = None, False

    def _lull_end(self) -> float:
        """The loop time from which no new row makes a lull."""
        return self._last_arrival + max(LULL_GAPS * self._gap, MIN_LULL_MS / 1000)

    def _lull(self, wake: asyncio.Future[None], deadline: float) -> None:
        """Run the gathering batch at a lull or at its deadline, else look again (a timer)
        when the latest row's lull would begin."""
        loop = asyncio.get_running_loop()
        end = min(deadline, self._lull_end())
        if loop.time() >= end:
            self._timer = None
            _resolve(wake)
        else:
            self._timer = loop.call_at(end, self._lull, wake, deadline)

    async def _execute(self, batch: list[_Item]) -> None:
        rows = [item[0] for item in batch]
        try:
            started = time.perf_counter()
            outputs = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.predict_batch, rows)
            per_row = (time.perf_counter() - started) / len(rows)
            self.row_seconds = (per_row if self.batches == 0
                                else (1 - EWMA) * self.row_seconds + EWMA * per_row)
            if len(outputs) != len(rows):
                raise RuntimeError(f"predict_batch returned {len(outputs)} outputs for "
                                   f"{len(rows)} rows")
        except Exception as exc:
            if len(batch) > 1:  # one bad row must not fail its neighbours: retry one by one
                for item in batch:
                    await self._execute([item])
                return
            future = batch[0][1]
            if not future.done():
                future.set_exception(exc)
            return
        self.batches += 1
        self.rows += len(rows)
        for (_, future, _), output in zip(batch, outputs, strict=True):
            if not future.done():
                future.set_result(output)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
