"""TrafficRouter: modes, sticky splits, failing candidates, hot swaps under load."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from driftloop.serving.batching import BatchingQueue, QueueFullError
from driftloop.serving.router import Traffic, TrafficRouter, unit_hash


class Tagged:
    """A model answering with its own tag, optionally slow or failing."""

    def __init__(self, tag: str, delay: float = 0.0, fail: bool = False) -> None:
        self.tag, self.delay, self.fail = tag, delay, fail

    def predict_batch(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError(f"{self.tag} is broken")
        return [f"{self.tag}:{r['x']}" for r in rows]


async def router_with(champion: Tagged, candidate: Tagged | None, traffic: Traffic,
                      **kw: Any) -> TrafficRouter:
    router = TrafficRouter(traffic, **{"max_wait_ms": 0.2, **kw})
    await router.install("champion", 1, champion)
    if candidate is not None:
        await router.install("candidate", 2, candidate)
    return router


def test_off_mode_serves_the_champion_only() -> None:
    async def main() -> None:
        router = await router_with(Tagged("a"), Tagged("b"), Traffic("off"))
        routed = await router.predict({"x": 1}, "k")
        assert (routed.output, routed.slot, routed.version, routed.mirror) == ("a:1", "champion",
                                                                             1, None)
        await router.close()
    asyncio.run(main())


def test_shadow_mirrors_and_never_answers_from_the_candidate() -> None:
    async def main() -> None:
        router = await router_with(Tagged("a"), Tagged("b", fail=True), Traffic("shadow"))
        results = [await router.predict({"x": i}, f"k{i}") for i in range(20)]
        assert all(r.slot == "champion" and r.output.startswith("a:") for r in results)
        assert [await r.mirror for r in results if r.mirror] == [None] * 20
        assert router.counters.candidate_errors == 20 and router.counters.mirrored == 20
        await router.close()
    asyncio.run(main())


def test_a_mirror_shed_by_a_slow_candidates_admission_is_no_candidate_failure() -> None:
    """A slow candidate's queue refuses mirrors past its wait target; that is load
    shedding, and must not read as candidate errors in the shadow evidence (a Gemini
    candidate was rejected for "failing" 20 % of requests that were only shed)."""
    async def main() -> None:
        router = await router_with(Tagged("a"), Tagged("b", delay=0.1), Traffic("shadow"),
                                   max_queue_wait_ms=250, max_batch=1)
        for i in range(3):  # the queue learns the candidate's time per row
            warm = await router.predict({"x": i}, f"w{i}")
            assert warm.mirror is not None and await warm.mirror == f"b:{i}"
        answers = await asyncio.gather(*(router.predict({"x": i}, f"k{i}")
                                         for i in range(40)), return_exceptions=True)
        routed = [a for a in answers if not isinstance(a, BaseException)]
        assert all(isinstance(a, QueueFullError) for a in answers if a not in routed)
        mirrors = [r.mirror for r in routed if r.mirror is not None]
        await asyncio.wait(mirrors)
        shed = [m for m in mirrors if m.cancelled()]
        assert shed and router.counters.mirrors_shed == len(shed)  # 40 x 100 ms >> 250 ms
        assert router.counters.candidate_errors == 0
        assert all(m.result().startswith("b:") for m in mirrors if not m.cancelled())
        await router.close()
    asyncio.run(main())


def test_canary_split_is_sticky_and_close_to_the_weight() -> None:
    async def main() -> None:
        router = await router_with(Tagged("a"), Tagged("b"), Traffic("canary", weight=0.3))
        keys = [f"user-{i}" for i in range(1000)]
        first = [(await router.predict({"x": 0}, k)).slot for k in keys]
        again = [(await router.predict({"x": 0}, k)).slot for k in keys]
        assert first == again
        assert 0.25 < first.count("candidate") / len(keys) < 0.35
        assert all((unit_hash(k) < 0.3) == (s == "candidate") for k, s in zip(keys, first,
                                                                             strict=True))
        await router.close()
    asyncio.run(main())


def test_ab_computes_the_other_arm_too() -> None:
    async def main() -> None:
        router = await router_with(Tagged("a"), Tagged("b"), Traffic("ab", weight=0.5))
        for i in range(50):
            routed = await router.predict({"x": i}, f"k{i}")
            other = "b" if routed.slot == "champion" else "a"
            assert routed.mirror is not None and await routed.mirror == f"{other}:{i}"
        await router.close()
    asyncio.run(main())


def test_a_failing_or_slow_canary_falls_back_to_the_champion() -> None:
    async def main() -> None:
        router = await router_with(Tagged("a"), Tagged("b", fail=True), Traffic("canary", 1.0))
        routed = await router.predict({"x": 1}, "k")
        assert (routed.output, routed.fell_back) == ("a:1", True)
        await router.install("candidate", 3, Tagged("c", delay=0.3))
        router.candidate_timeout = 0.05
        routed = await router.predict({"x": 2}, "k")
        assert routed.output == "a:2" and router.counters.candidate_timeouts == 1
        await router.close()
    asyncio.run(main())


def test_hot_swaps_under_load_drop_nothing() -> None:
    async def main() -> None:
        router = await router_with(Tagged("v1", delay=0.002), None, Traffic())

        async def client(n: int) -> list[tuple[str, int]]:
            out = []
            for i in range(n):
                routed = await router.predict({"x": i}, f"c{i}")
                out.append((routed.output, routed.version))
            return out

        async def swapper() -> None:
            for version in range(2, 12):
                await asyncio.sleep(0.01)
                await router.install("champion", version, Tagged(f"v{version}", delay=0.002),
                                     warm_rows=[{"x": -1}])

        results = await asyncio.gather(*(client(40) for _ in range(16)), swapper())
        answers = [a for batch in results[:-1] for a in batch]  # type: ignore[union-attr]
        assert len(answers) == 640
        assert all(output.startswith(f"v{version}:") for output, version in answers)
        assert router.champion is not None and router.champion.version == 11
        await router.close()
    asyncio.run(main())


def test_a_full_queue_refuses_at_once() -> None:
    async def main() -> None:
        queue = BatchingQueue(Tagged("a", delay=0.2).predict_batch, max_batch=1, max_queue=2)
        await queue.start()
        waiting = [asyncio.create_task(queue.submit({"x": 0}))]
        await asyncio.sleep(0.05)  # the worker takes it and is busy for 0.2 s
        waiting += [asyncio.create_task(queue.submit({"x": i})) for i in (1, 2)]
        await asyncio.sleep(0.01)  # two waiting: the queue is full
        assert queue.depth == 2
        with pytest.raises(QueueFullError):
            await queue.submit({"x": 9})
        assert await asyncio.gather(*waiting) == ["a:0", "a:1", "a:2"]
        await queue.stop()
    asyncio.run(main())


def test_a_lone_request_does_not_wait_for_company_but_a_crowd_is_batched() -> None:
    async def main() -> None:
        sizes: list[int] = []

        def model(rows: Sequence[Mapping[str, Any]]) -> list[Any]:
            sizes.append(len(rows))
            time.sleep(0.02)
            return [r["x"] for r in rows]

        queue = BatchingQueue(model, max_batch=8, max_wait_ms=60_000)  # a minute of waiting
        await queue.start()
        for i in range(3):  # one at a time: each would otherwise wait the full minute
            assert await asyncio.wait_for(queue.submit({"x": i}), 10) == i
        crowd = [asyncio.create_task(queue.submit({"x": i})) for i in range(40)]
        assert await asyncio.wait_for(asyncio.gather(*crowd), 10) == list(range(40))
        await queue.stop()
        assert sizes[:3] == [1, 1, 1]
        assert sizes[3:] == [8] * 5  # the crowd filled whole batches
    asyncio.run(main())


@pytest.mark.parametrize(("kw", "field"), [({"mode": "blue"}, "mode"), ({"weight": 2.0}, "weight"),
                                           ({"shadow_fraction": -0.1}, "shadow_fraction")])
def test_bad_traffic_names_the_field(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Traffic(**kw)


def test_a_slow_mirror_times_out_to_none_and_costs_no_task() -> None:
    """A mirror is a queued row and a deadline (issue 14: two tasks per mirrored request
    before); a candidate slower than candidate_timeout still reads as a timeout."""
    async def main() -> None:
        router = await router_with(Tagged("a"), Tagged("b", delay=0.3), Traffic("shadow"),
                                   candidate_timeout=0.05)
        baseline = len(asyncio.all_tasks())
        routed = await router.predict({"x": 1}, "k")
        assert routed.mirror is not None and len(asyncio.all_tasks()) == baseline
        assert await asyncio.wait_for(routed.mirror, 10) is None
        assert router.counters.candidate_timeouts == 1 and router.counters.candidate_errors == 0
        await router.close()
    asyncio.run(main())


def test_each_mirror_times_out_on_its_own_deadline_and_an_answered_one_never() -> None:
    """Mirrors share one timer (their deadlines come in order): each of several slow ones
    still fails candidate_timeout after it was sent, not when the first one's does."""
    async def main() -> None:
        router = await router_with(Tagged("a"), Tagged("b", delay=0.4), Traffic("shadow"),
                                   candidate_timeout=0.2)
        loop = asyncio.get_running_loop()
        sent, failed = [], []
        for i in range(3):
            routed = await router.predict({"x": i}, f"k{i}")
            assert routed.mirror is not None
            sent.append(loop.time())
            routed.mirror.add_done_callback(lambda f: failed.append(loop.time()))
            await asyncio.sleep(0.15)
        await asyncio.sleep(0.6)
        assert len(failed) == 3 and router.counters.candidate_timeouts == 3
        for at, out in zip(sent, failed, strict=True):
            assert 0.2 <= out - at < 0.45, (at, out)
        router.candidate_timeout = 5.0
        routed = await router.predict({"x": 9}, "k9")
        assert routed.mirror is not None and await routed.mirror == "b:9"
        assert router.counters.candidate_timeouts == 3
        await router.close()
    asyncio.run(main())
