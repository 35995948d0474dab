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
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pydantic_core
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

#: The content type the fast path takes; any other (with parameters, +json...) is FastAPI's.
JSON = b"application/json"


class JsonBodyRoute(APIRoute):
    """An APIRoute for an ``async`` endpoint of one JSON body (a pydantic model) and
    optionally the Request, whose answer is JSON-able as it is: a dict in the response
    model's shape."""

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

        async def handler(request: Request) -> Response:
            if _content_type(request) != JSON:
                return await generic(request)
            raw = await request.body()
            try:
                body = model.model_validate_json(raw)
            except ValidationError:  # FastAPI's own answer: the same 422 (or 400) as ever
                return await generic(request)
            arguments: dict[str, Any] = {body_name: body}
            if request_name is not None:
                arguments[request_name] = request
            answer = await endpoint(**arguments)
            # The pydantic-core serializer the response model uses, without validating
            # again what the endpoint built in its shape: the same bytes.
            return Response(pydantic_core.to_json(answer, inf_nan_mode="null"), status,
                            media_type="application/json")

        return handler


def _content_type(request: Request) -> bytes | None:
    """The raw Content-Type header (no Headers object is built for it)."""
    for key, value in request.scope["headers"]:
        if key == b"content-type":
            return bytes(value)
    return None
