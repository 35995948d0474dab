"""The observation path's batching: bursts linger for company, a settle cuts it short."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from driftloop.drift import DriftDetector
from driftloop.serving.observer import Observation, Observer


def observer(batch: int, linger: float) -> tuple[Observer, list[int]]:
    reference = {"x": np.random.default_rng(0).normal(size=500)}
    sizes: list[int] = []

    def on_batch(items: Sequence[Observation]) -> None:
        sizes.append(len(items))

    return Observer(DriftDetector.from_reference(reference), None, "m", batch=batch,
                    on_batch=on_batch, linger=linger), sizes


def burst(obs: Observer, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        assert obs.offer(Observation(f"r{i}", datetime.now(UTC), {"x": float(i)}, 0.5, 1,
                                     "champion"))


def test_bursts_linger_into_one_batch() -> None:
    async def main() -> list[int]:
        obs, sizes = observer(batch=512, linger=1.0)
        obs.start()
        for k in range(3):  # three champion batches, 50 ms apart
            burst(obs, 32, start=32 * k)
            await asyncio.sleep(0.05)
        while obs.observed < 96:
            await asyncio.sleep(0.05)
        await obs.stop()
        return sizes

    assert asyncio.run(main()) == [96]


def test_a_full_batch_does_not_wait() -> None:
    async def main() -> tuple[list[int], float]:
        obs, sizes = observer(batch=64, linger=30.0)
        obs.start()
        started = time.monotonic()
        burst(obs, 64)
        while obs.observed < 64:
            await asyncio.sleep(0.01)
        took = time.monotonic() - started
        await obs.stop()
        return sizes, took

    sizes, took = asyncio.run(main())
    assert sizes == [64] and took < 10


def test_settle_and_stop_cut_the_linger_short() -> None:
    async def main() -> tuple[int, float, list[int]]:
        obs, sizes = observer(batch=512, linger=30.0)
        obs.start()
        burst(obs, 5)
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await obs.settle(timeout=20)
        settled, took = obs.observed, time.monotonic() - started
        burst(obs, 3, start=5)
        await obs.stop()  # processes the rest at once
        return settled, took, sizes

    settled, took, sizes = asyncio.run(main())
    assert settled == 5 and took < 10
    assert sizes == [5, 3]
