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
from functools import cache
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyGuard:
    """Plain ASGI middleware: the size limit and the read timeout of request bodies."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _error(send, 413, f"the body is larger than {self.max_bytes} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                async with asyncio.timeout(self.timeout):  # a timer, not a task per request
                    message = await receive()
            except TimeoutError:
                await _error(send, 408, f"the body was not received within {self.timeout:g} "
                             "s of its previous part")
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _error(send, 413, f"the body is larger than {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)


async def _error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": {"status": status, "message": message,
                                 "field": "body"}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
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
    are slow to send their headers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        # A pipelined request whose headers are in already starts now: nothing to wait for.
        waiting = not self.pipeline
        super().on_response_complete()
        if waiting and not self.transport.is_closing():
            self._arm()  # the next request on this connection gets the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(header_timeout(), self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        """The timer ran out before the headers were complete (their callback cancels it)."""
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
