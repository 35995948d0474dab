"""Bounds on what one client can hold: body size, and time to send headers and body.

A slow client ("slowloris") that trickles a request a byte at a time would otherwise hold
its connection, and the memory behind it, forever. Two timers close that door:

- **headers**: :class:`HttpToolsWithHeaderTimeout` (the HTTP protocol ``driftloop serve``
  gives uvicorn) closes a connection whose request headers are not complete ``header_timeout``
  seconds after the connection opened or the previous response ended. uvicorn's own
  keep-alive timeout only covers a connection that sends nothing at all.
- **body**: :class:`BodyGuard` reads a request body before the route sees it, waits at most
  ``body_timeout`` seconds for each piece, and answers 408 when one is late; a body over
  ``max_body_bytes`` gets 413 (at once when Content-Length says so).

Both are plain ASGI / asyncio code, not Starlette's ``BaseHTTPMiddleware``, whose extra
task and stream per request cost 42% of throughput (issue 14).
"""

from __future__ import annotations

import asyncio
import json
import types
from collections.abc import Generator
from functools import cache
from typing import Any, cast

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from driftloop.errors import InputError

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyGuard:
    """Plain ASGI middleware: the size limit and the read timeout of request bodies."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _error(send, 413, f"the body is larger than {self.max_bytes} bytes")
            return
        size = 0

        async def guarded() -> Message:
            """The next part of the body, within the timeout and the size limit."""
            nonlocal size
            message = await receive_within(receive, self.timeout)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                raise BodyTooLargeError(f"the body is larger than {self.max_bytes} bytes")
            return message

        try:
            body = await read_body(guarded)
        except TimeoutError:
            await _error(send, 408, f"the body was not received within {self.timeout:g} "
                         "s of its previous part")
            return
        except BodyTooLargeError as exc:
            await _error(send, 413, str(exc))
            return
        if body is None:  # the client went away
            return
        await self.app(scope, replaying(body, receive), send)


class BodyTooLargeError(InputError):
    """A body grew past ``max_bytes`` while :class:`BodyGuard` read it (answered 413)."""

    field = "body"


async def receive_within(receive: Receive, timeout: float) -> Message:
    """``await receive()``, or TimeoutError once ``timeout`` seconds pass without its
    message. A message that is there already (a small body comes with its headers) is
    taken without a timer: ``asyncio.timeout`` around every read cost ~4 µs of CPU a
    request under uvloop. Only a read that has to wait runs under one."""
    step = receive().__await__()
    try:
        waiting = step.send(None)
    except StopIteration as done:
        return cast(Message, done.value)
    async with asyncio.timeout(timeout):  # a timer, not a task per request
        return cast(Message, await _resume(step, waiting))


@types.coroutine
def _resume(step: Generator[Any, Any, Any], waiting: Any) -> Generator[Any, Any, Any]:
    """The rest of a suspended awaitable, as ``yield from`` would run it."""
    while True:
        try:
            sent = yield waiting
        except GeneratorExit:
            step.close()
            raise
        except BaseException as exc:
            try:
                waiting = step.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                waiting = step.send(sent)
            except StopIteration as done:
                return done.value


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` (read from ``receive`` already) in one message,
    then what ``receive`` gives after it: the disconnect, when it comes."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": {"status": status, "message": message,
                                 "field": "body"}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def header(scope: Scope, name: bytes) -> str | None:
    """The raw value of the request header ``name`` (lower case), no Headers object built."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


@cache
def header_timeout() -> float:
    """``header_timeout`` from the settings (read once per worker process)."""
    from driftloop.config import Settings  # noqa: PLC0415 - the settings of this worker

    return Settings.load().header_timeout


class HttpToolsWithHeaderTimeout(HttpToolsProtocol):
    """uvicorn's httptools protocol (its C parser: the pure-Python h11 parser and writer
    took a quarter of the server's CPU under load, issue 14), closing connections that
    are slow to send their headers.

    Each request sets a deadline, a number; one timer per connection reads it when it
    fires, and waits again if the deadline has moved on. A timer armed and cancelled for
    every request cost ~4 µs of CPU under uvloop; this costs a clock read.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_deadline: float | None = None  # None: not waiting for headers

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._header_deadline = None
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        # A pipelined request whose headers are in already starts now: nothing to wait for.
        waiting = not self.pipeline
        super().on_response_complete()
        if waiting and not self.transport.is_closing():
            self._arm()  # the next request on this connection gets the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._header_deadline = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_deadline = self.loop.time() + header_timeout()
        if self._header_timer is None:
            self._header_timer = self.loop.call_at(self._header_deadline, self._expire)

    def _expire(self) -> None:
        """The timer ran out: close the connection if its headers are late, else wait
        for the current deadline (a later request's), if any."""
        self._header_timer = None
        deadline = self._header_deadline
        if deadline is None or self.transport.is_closing():
            return
        if self.loop.time() >= deadline:
            self.transport.close()
        else:
            self._header_timer = self.loop.call_at(deadline, self._expire)
