"""BatchingQueue admission: whole batches or nothing, and a latency target, not only a count."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from driftloop.serving import batching
from driftloop.serving.batching import BatchingQueue, QueueFullError


class Slow:
    """A model that takes ``per_row`` seconds a row and remembers every row it scored."""

    def __init__(self, per_row: float) -> None:
        self.per_row = per_row
        self.scored: list[Any] = []

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        time.sleep(self.per_row * len(rows))
        self.scored.extend(r["x"] for r in rows)
        return [r["x"] for r in rows]


def test_a_batch_that_does_not_fit_is_refused_whole_and_leaves_no_trace() -> None:
    async def main() -> tuple[list[Any], Slow]:
        model = Slow(0.002)
        queue = BatchingQueue(model, max_batch=8, max_wait_ms=1, max_queue=100,
                              max_queue_wait_ms=None)
        await queue.start()
        blockers = [asyncio.ensure_future(queue.submit({"x": -1 - i})) for i in range(60)]
        await asyncio.sleep(0)  # the 60 single rows are queued
        with pytest.raises(QueueFullError, match="waiting"), queue.admission(50):
            pytest.fail("admitted 50 rows into a queue with room for 40")
        with queue.admission(30):  # room for these: all are queued and scored
            batch = await asyncio.gather(*(queue.submit({"x": i}) for i in range(30)))
        await asyncio.gather(*blockers)
        await queue.stop()
        return batch, model

    batch, model = asyncio.run(main())
    assert batch == list(range(30))
    assert sorted(x for x in model.scored if x >= 0) == list(range(30))  # none of the 50


def test_rows_are_refused_once_the_expected_wait_passes_the_target() -> None:
    """2 ms a row and a 100 ms target: about 50 rows may wait, far fewer than max_queue."""
    async def main() -> tuple[int, int, float]:
        queue = BatchingQueue(Slow(0.002), max_batch=8, max_wait_ms=1, max_queue=10_000,
                              max_queue_wait_ms=100)
        await queue.start()
        await queue.predict_many([{"x": i} for i in range(8)])  # learns the time per row
        results = await asyncio.gather(*(queue.submit({"x": i}) for i in range(400)),
                                       return_exceptions=True)
        await queue.stop()
        refused = sum(isinstance(r, QueueFullError) for r in results)
        return refused, len(results) - refused, queue.row_seconds

    refused, served, row_seconds = asyncio.run(main())
    assert row_seconds > 0.001
    assert refused > 0 and served >= 8
    assert served * row_seconds < 0.5  # the admitted ones were due within a few targets


def test_a_batch_gathers_company_without_a_task_per_row_and_runs_once_full(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load a batch waits up to max_wait_ms for company; the rows it waits for cost
    no task each (issue 14: a task and a timer per row on the event loop), and a full
    batch runs at once instead of waiting out max_wait_ms. (No lull here: the test holds
    rows back on purpose, and a busy machine may pause it for milliseconds.)"""
    monkeypatch.setattr(batching, "MIN_LULL_MS", 60_000.0)

    async def main() -> None:
        batches: list[int] = []

        def model(rows: Sequence[Mapping[str, Any]]) -> list[Any]:
            batches.append(len(rows))
            return [r["x"] for r in rows]

        queue = BatchingQueue(model, max_batch=8, max_wait_ms=60_000)
        await queue.start()
        await asyncio.gather(*(queue.submit({"x": i}) for i in range(8)))  # full: now busy
        baseline = len(asyncio.all_tasks())
        futures = [queue.enqueue({"x": i}) for i in range(3)]
        for _ in range(5):
            await asyncio.sleep(0)  # the worker takes the rows and waits for company
        assert len(asyncio.all_tasks()) == baseline
        assert not any(f.done() for f in futures)  # still waiting for company
        futures += [queue.enqueue({"x": i}) for i in range(3, 8)]
        started = time.monotonic()
        assert await asyncio.wait_for(asyncio.gather(*futures), 30) == list(range(8))
        assert time.monotonic() - started < 30 and batches[-1] == 8
        await queue.stop()
    asyncio.run(main())


def _recording() -> tuple[list[int], Any]:
    batches: list[int] = []

    def model(rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        batches.append(len(rows))
        return [r["x"] for r in rows]

    return batches, model


def test_a_batch_runs_at_a_lull_instead_of_waiting_out_max_wait() -> None:
    """Closed-loop clients send a burst, then nothing until it is answered: the batch runs
    once rows stop coming, not after max_wait_ms (issue 14: with 32 clients every batch
    held its 32 rows within a millisecond, then waited 9 more for none)."""
    async def main() -> tuple[list[int], float]:
        batches, model = _recording()
        queue = BatchingQueue(model, max_batch=64, max_wait_ms=60_000)
        await queue.start()
        started = time.monotonic()
        burst = [queue.enqueue({"x": i}) for i in range(10)]  # more than one: busy
        assert await asyncio.wait_for(asyncio.gather(*burst), 30) == list(range(10))
        await queue.stop()
        return batches, time.monotonic() - started

    batches, waited = asyncio.run(main())
    assert batches[-1] == 10 and waited < 30


def test_steady_rows_keep_filling_the_batch() -> None:
    """Rows that keep coming (two every 80 ms: the lull rule waits 280 ms once it has
    learnt the usual gap) are no lull: each batch fills up to max_batch."""
    async def main() -> list[int]:
        batches, model = _recording()
        queue = BatchingQueue(model, max_batch=8, max_wait_ms=1_000)
        await queue.start()
        answers = []
        for pair in range(24):
            answers += [queue.enqueue({"x": 2 * pair}), queue.enqueue({"x": 2 * pair + 1})]
            await asyncio.sleep(0.08)
        assert await asyncio.wait_for(asyncio.gather(*answers), 30) == list(range(48))
        await queue.stop()
        return batches

    batches = asyncio.run(main())
    # 48 rows in full batches: six of 8 (a pause of the machine may split one)
    assert batches.count(8) >= 4, batches


def test_patient_rows_wait_longer_for_a_full_batch() -> None:
    """Mirrored rows (patient: no client waits for them) gather two half batches into one
    model call where rows a client waits for would run after max_wait_ms (issue 14)."""
    async def main() -> list[int]:
        batches, model = _recording()
        queue = BatchingQueue(model, max_batch=8, max_wait_ms=1, patient_wait_ms=60_000)
        await queue.start()
        await asyncio.gather(*(queue.submit({"x": i}) for i in range(8)))  # busy now
        first = [queue.enqueue({"x": i}, patient=True) for i in range(4)]
        await asyncio.sleep(0.05)  # 50 x max_wait_ms: still waiting for company
        assert not any(f.done() for f in first)
        second = [queue.enqueue({"x": i}, patient=True) for i in range(4, 8)]
        assert await asyncio.wait_for(asyncio.gather(*first, *second), 30) == list(range(8))
        await queue.stop()
        return batches

    assert asyncio.run(main())[-1] == 8


def test_a_row_a_client_waits_for_runs_the_patient_rows_at_once() -> None:
    async def main() -> tuple[list[int], float]:
        batches, model = _recording()
        queue = BatchingQueue(model, max_batch=8, max_wait_ms=60_000, patient_wait_ms=60_000)
        await queue.start()
        await asyncio.gather(*(queue.submit({"x": i}) for i in range(8)))  # busy now
        patient = [queue.enqueue({"x": i}, patient=True) for i in range(3)]
        await asyncio.sleep(0.01)  # they wait for company
        started = time.monotonic()
        answers = await asyncio.wait_for(asyncio.gather(queue.submit({"x": 3}), *patient), 30)
        assert answers == [3, 0, 1, 2]
        await queue.stop()
        return batches, time.monotonic() - started

    batches, waited = asyncio.run(main())
    assert batches[-1] == 4 and waited < 30
