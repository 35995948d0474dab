"""From exceptions to HTTP answers: only driftloop's own client-facing errors get a 4xx.

Every error answer has one shape, ``{"error": {"status", "message", "field"}}``.
:class:`ErrorGuard` answers for whatever a route lets escape, by the error's kind in
:mod:`driftloop.errors`: an :class:`~driftloop.errors.InputError` (the drift package's
included) is the client's fault, 422 naming the field; not found 404, conflict 409,
unavailable 503 with Retry-After. Anything else is a 500 whose message names only the
exception's type, with the traceback in the server's log: a bare ``ValueError`` or
``KeyError`` is a bug of the server (or a misconfiguration), and answering it 422 would
blame the client and hide the bug from the error rate. Its text may hold what a client
must not see (a path, a database URL), so it never goes into the response.

Plain ASGI, like :mod:`driftloop.serving.limits`: it catches with ``isinstance``, so one
place maps the whole tree, and it answers without re-raising, so the server does not log a
client's error as a crash.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftloop.errors import ConflictError, InputError, NotFoundError, UnavailableError

logger = logging.getLogger(__name__)

#: The kinds a client can act on, and their status; the first match wins.
STATUS: Final = ((InputError, 422), (NotFoundError, 404), (ConflictError, 409),
                 (UnavailableError, 503))
RETRY_AFTER: Final = {"Retry-After": "1"}


def error_response(status: int, message: str, field: str | None = None,
                   details: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The error envelope every error answer of the server uses. A 503 always says when
    to try again (``Retry-After``)."""
    body: dict[str, Any] = {"error": {"status": status, "message": message, "field": field}}
    if details:
        body["error"]["details"] = details
    if status == 503:
        headers = {**RETRY_AFTER, **(headers or {})}
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(exc: BaseException) -> int:
    """The HTTP status for an exception that escaped a route: 500 unless its kind says."""
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 500)


def answer(exc: Exception, scope: Scope) -> JSONResponse:
    """The error answer for ``exc``; a 500 is logged with its traceback."""
    status = status_of(exc)
    if status == 500:
        logger.error("%s %s failed", scope.get("method"), scope.get("path"), exc_info=exc)
        return error_response(500, f"internal server error ({type(exc).__name__}); "
                                   "the server's log has the details")
    return error_response(status, str(exc), getattr(exc, "field", None))


class ErrorGuard:
    """Plain ASGI middleware: an exception a route lets escape becomes the error envelope.

    A response already under way cannot be replaced: then the exception goes on to the
    server, which closes the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                raise
            await answer(exc, scope)(scope, receive, send)
