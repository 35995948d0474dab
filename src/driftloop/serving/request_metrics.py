"""Every HTTP request counted once, with the status it really got and its latency.

:class:`RequestMetrics` is the outermost middleware, so it sees what the client sees: the
guards' 403/408/413, a route's 401, 404 or 422, the error envelope's 500. It labels a
request with its route's template, never the raw path (one series per ``/predict``, not
per request id), and every request no route took under one label, :data:`UNROUTED`:
unknown paths (404) and bodies refused before routing. The dashboard's files count under
its one route, ``/`` (:class:`Mounted`); the ``/ws`` upgrade is no HTTP request and is not
counted. Prediction routes also note which
version and slot answered each row (:func:`note_answers`); those rows are counted in
``driftloop_requests_total`` with the status of the response that carried them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftloop.serving.metrics import ServerMetrics

#: The route label of requests no route took.
UNROUTED: Final = "(unrouted)"
#: The scope key under which a prediction route notes (version, slot) per answered row.
ANSWERED: Final = "driftloop.answered"
#: The scope key under which a mounted app (:class:`Mounted`) names its route.
MOUNTED: Final = "driftloop.mounted"


def note_answers(scope: Scope, answers: Iterable[Mapping[str, Any]]) -> None:
    """Note the version and slot of each answered prediction, for :class:`RequestMetrics`."""
    noted = scope.get(ANSWERED)
    if noted is not None:
        noted.extend((a["model_version"], a["slot"]) for a in answers)


def route_label(scope: Scope, status: int) -> str:
    """The template of the route that took the request, or :data:`UNROUTED`. A mount (the
    dashboard's static files at ``/``) counts as a route only for what it found."""
    route = scope.get("route")
    if route is not None and not isinstance(route, Mount):
        return getattr(route, "path", "") or "/"
    mounted = scope.get(MOUNTED)
    return mounted if mounted is not None and status != 404 else UNROUTED


class Mounted:
    """A mounted ASGI app (the dashboard's static files) that names its route for
    :class:`RequestMetrics`: FastAPI marks the scope with the route only for its own
    routes, so every file served would otherwise count as unrouted."""

    def __init__(self, app: ASGIApp, route: str) -> None:
        self.app, self.route = app, route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[MOUNTED] = self.route
        await self.app(scope, receive, send)


class RequestMetrics:
    """Plain ASGI middleware: times and counts every HTTP request in ``metrics()``, which
    is ``None`` until the service has started (those requests are not counted)."""

    def __init__(self, app: ASGIApp, metrics: Callable[[], ServerMetrics | None]) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app fails before it answers
        answered: list[tuple[int, str]] = []
        scope[ANSWERED] = answered

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            metrics = self.metrics()
            if metrics is not None:
                elapsed = time.perf_counter() - started
                metrics.observe_http(scope["method"], route_label(scope, status), status,
                                     elapsed)
                for version, slot in answered:
                    metrics.observe_request(version, slot, elapsed, status)

