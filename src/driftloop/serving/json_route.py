"""JsonBodyRoute: the prediction routes' request path without FastAPI's generic work.

FastAPI handles a request body generically: it parses the content type, decodes the JSON
into Python objects, solves the route's dependencies, validates the objects against the
body model in Python mode, then validates the endpoint's answer against the response
model again before serializing it. On ``/predict`` that was more CPU than the rest of
the request path (issue 14). This route takes the common case in one step each:
``model_validate_json`` on the raw body (pydantic-core parses and validates together) and
one serialization of the answer, which the endpoint builds in the response model's shape.

Anything else goes the generic way, so every refusal stays exactly what FastAPI answers:
a body that is not ``application/json`` or is empty, and any body the fast validation
refuses (not JSON, a wrong field, a NUL in a string...): FastAPI then parses it again and
raises its own error, the 422 envelope naming the field. The route is still an APIRoute
with the same body and response models, so the OpenAPI document does not change.

:class:`DirectRoutes` then takes such a request before Starlette's router: the innermost
middleware, it hands a JSON ``POST`` for a JsonBodyRoute straight to the route's
:meth:`~JsonBodyRoute.answer`, after every one of the server's own middlewares (metrics,
Origin, body limits, error envelope) has seen it as before. The layers it skips
(Starlette's exception middleware, FastAPI's exit stack, the router trying each route,
the route's request/response wrappers) cost ``/predict`` about 35 µs of CPU per
request, a tenth of a served request with the shadow on (issue 14, the same server
interleaved).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

import pydantic_core
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from driftloop.serving.limits import header, read_body, replaying

#: The content type the fast path takes; any other (with parameters, +json...) is FastAPI's.
JSON = "application/json"


class JsonBodyRoute(APIRoute):
    """An APIRoute for an ``async`` endpoint of one JSON body (a pydantic model) and
    optionally the Request, whose answer is JSON-able as it is: a dict in the response
    model's shape."""

    #: The common case in one step (see the module docstring): the answer to a raw JSON
    #: body, or None when the fast validation refuses it (FastAPI's generic handler then
    #: answers, with its own error). Set by :meth:`get_route_handler`.
    answer: Callable[[bytes, Request], Coroutine[Any, Any, Response | None]]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        generic = super().get_route_handler()
        dependant, body_field = self.dependant, self.body_field
        if (body_field is None or len(dependant.body_params) != 1 or dependant.dependencies
                or dependant.path_params or dependant.query_params or dependant.header_params
                or dependant.cookie_params or not isinstance(body_field.field_info.annotation,
                                                             type)
                or not issubclass(body_field.field_info.annotation, BaseModel)):
            raise TypeError(f"{self.path}: JsonBodyRoute takes one body model and the "
                            "Request only")
        model: type[BaseModel] = body_field.field_info.annotation
        body_name, request_name = body_field.name, dependant.request_param_name
        endpoint = self.endpoint
        status = self.status_code or 200

        async def answer(raw: bytes, request: Request) -> Response | None:
            try:
                body = model.model_validate_json(raw)
            except ValidationError:  # FastAPI's own answer: the same 422 (or 400) as ever
                return None
            arguments: dict[str, Any] = {body_name: body}
            if request_name is not None:
                arguments[request_name] = request
            result = await endpoint(**arguments)
            # The pydantic-core serializer the response model uses, without validating
            # again what the endpoint built in its shape: the same bytes.
            return Response(pydantic_core.to_json(result, inf_nan_mode="null"), status,
                            media_type="application/json")

        async def handler(request: Request) -> Response:
            if header(request.scope, b"content-type") != JSON:
                return await generic(request)
            response = await answer(await request.body(), request)
            return response if response is not None else await generic(request)

        self.answer = answer
        return handler


class DirectRoutes:
    """Plain ASGI middleware, the innermost: a ``POST`` with a JSON body to a route in
    ``routes`` (path -> :class:`JsonBodyRoute`, filled by whoever adds such routes) goes
    to the route's :meth:`~JsonBodyRoute.answer` at once; anything else, and a body the
    fast validation refuses, to ``app`` as ever.

    Behind a ``root_path`` (a proxy's prefix) every request takes the router's way, which
    knows how to strip it. What the router would have done for the route, it does too: the
    scope names the route (the request metrics label by it), and an exception goes to the
    app's handler for its kind (``exception_handlers``, FastAPI's, looked up by the
    exception's MRO as Starlette does); one without a handler goes on to the outer
    middlewares, as from the router.
    """

    def __init__(self, app: ASGIApp, routes: Mapping[str, JsonBodyRoute],
                 exception_handlers: Mapping[Any, Callable[..., Any]]) -> None:
        self.app, self.routes, self.exception_handlers = app, routes, exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (self.routes.get(scope["path"]) if scope["type"] == "http"
                 and scope["method"] == "POST" and not scope.get("root_path") else None)
        if route is None or header(scope, b"content-type") != JSON:
            await self.app(scope, receive, send)
            return
        raw = await read_body(receive)
        if raw is None:  # the client went away
            return
        receive = replaying(raw, receive)
        scope.update(route=route, endpoint=route.endpoint, path_params={})
        request = Request(scope, receive)
        try:
            response = await route.answer(raw, request)
        except Exception as exc:
            handler = next((self.exception_handlers[kind] for kind in type(exc).__mro__
                            if kind in self.exception_handlers), None)
            if handler is None:
                raise
            response = await handler(request, exc)
        if response is None:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def json_body_routes(routes: Iterable[BaseRoute]) -> dict[str, JsonBodyRoute]:
    """The JsonBodyRoutes among ``routes``, by path: :class:`DirectRoutes`' table."""
    return {route.path: route for route in routes if isinstance(route, JsonBodyRoute)}

