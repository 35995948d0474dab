"""receive_within: a body's read under a timeout, without a timer when the message is
there already (the slow-client tests run it on a real server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from driftloop.serving import limits
from driftloop.serving.limits import receive_within

MESSAGE = {"type": "http.request", "body": b"{}", "more_body": False}


def _counting_timeouts(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    used: list[float] = []
    timeout = asyncio.timeout

    def counting(delay: float) -> Any:
        used.append(delay)
        return timeout(delay)

    monkeypatch.setattr(limits.asyncio, "timeout", counting)
    return used


def test_a_message_that_is_there_is_taken_without_a_timer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    used = _counting_timeouts(monkeypatch)

    async def ready() -> dict[str, Any]:
        return MESSAGE

    assert asyncio.run(receive_within(ready, 1.0)) == MESSAGE
    assert used == []


def test_a_message_that_comes_in_time_is_read_under_a_timer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    used = _counting_timeouts(monkeypatch)

    async def main() -> Any:
        event = asyncio.Event()

        async def later() -> dict[str, Any]:
            await event.wait()
            await asyncio.sleep(0)  # a second suspension, resumed through the same path
            return MESSAGE

        asyncio.get_running_loop().call_later(0.05, event.set)
        return await receive_within(later, 5.0)

    assert asyncio.run(main()) == MESSAGE
    assert used == [5.0]


def test_a_message_that_never_comes_times_out_and_its_read_is_cancelled() -> None:
    async def main() -> bool:
        cancelled = asyncio.Event()

        async def never() -> dict[str, Any]:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return MESSAGE

        with pytest.raises(TimeoutError):
            await receive_within(never, 0.05)
        return cancelled.is_set()

    assert asyncio.run(main())


def test_cancelling_the_reader_cancels_the_read() -> None:
    async def main() -> None:
        async def never() -> dict[str, Any]:
            await asyncio.Event().wait()
            return MESSAGE

        task = asyncio.create_task(receive_within(never, 60.0))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
