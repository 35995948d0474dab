"""JsonBodyRoute (/predict, /predict/batch): the answers and the OpenAPI document of
FastAPI's own APIRoute, for every kind of body, without its generic work on good ones."""

from __future__ import annotations

import json
from typing import Any

import fastapi.routing
import pytest
import starlette.routing
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from tests.served_model import example_rows

from driftloop.config import Settings
from driftloop.serving import app as app_module
from driftloop.serving.app import create_app

ROW = example_rows(1)[0]
JSON = {"content-type": "application/json"}
SURROGATE = (b'{"features": {"mean radius": 1.0, "mean texture": 1.0, "mean smoothness": 1.0, '
             b'"worst area": 1.0, "size": "\\ud800"}}')
DUPLICATE = (b'{"features": {"mean radius": 1, "mean radius": "x", "mean texture": 1.0, '
             b'"mean smoothness": 1.0, "worst area": 1.0, "size": "small"}}')


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


#: name -> (path, body, headers); ``{id}`` in a body is the request id of that case.
CASES: dict[str, tuple[str, bytes, dict[str, str]]] = {
    "ok": ("/predict", _body({"features": ROW, "request_id": "{id}"}), JSON),
    "ok, an int for a float": ("/predict", _body({"features": {**ROW, "mean radius": 3},
                                                  "request_id": "{id}"}), JSON),
    "ok, a routing key": ("/predict", _body({"features": ROW, "request_id": "{id}",
                                             "routing_key": "k"}), JSON),
    "ok, a charset": ("/predict", _body({"features": ROW, "request_id": "{id}"}),
                      {"content-type": "application/json; charset=utf-8"}),
    "ok, +json": ("/predict", _body({"features": ROW, "request_id": "{id}"}),
                  {"content-type": "application/problem+json"}),
    "ok, a BOM": ("/predict", b"\xef\xbb\xbf" + _body({"features": ROW, "request_id": "{id}"}),
                  JSON),
    "no content type": ("/predict", _body({"features": ROW}), {}),
    "text/plain": ("/predict", _body({"features": ROW}), {"content-type": "text/plain"}),
    "empty": ("/predict", b"", JSON),
    "whitespace": ("/predict", b"   ", JSON),
    "not JSON": ("/predict", b"{not json", JSON),
    "trailing data": ("/predict", _body({"features": ROW}) + b" x", JSON),
    "not UTF-8": ("/predict", b'{"features": {"size": "\xff"}}', JSON),
    "NaN": ("/predict", b'{"features": {"mean radius": NaN}}', JSON),
    "Infinity": ("/predict", b'{"features": {"mean radius": Infinity}}', JSON),
    "too large a number": ("/predict", _body({"features": {**ROW, "mean radius": 10**400}}),
                           JSON),
    "an array": ("/predict", b"[1, 2]", JSON),
    "null": ("/predict", b"null", JSON),
    "a missing feature": ("/predict", _body({"features": {"mean radius": 1.0}}), JSON),
    "an extra feature": ("/predict", _body({"features": {**ROW, "zip": 1}}), JSON),
    "a string for a number": ("/predict", _body({"features": {**ROW, "mean radius": "big"}}),
                              JSON),
    "a boolean for a number": ("/predict", _body({"features": {**ROW, "mean radius": True}}),
                               JSON),
    "a number for a string": ("/predict", _body({"features": {**ROW, "size": 3}}), JSON),
    "a NUL": ("/predict", _body({"features": {**ROW, "size": "a\u0000b"}}), JSON),
    "a lone surrogate": ("/predict", SURROGATE, JSON),
    "a repeated key": ("/predict", DUPLICATE, JSON),
    "an empty request id": ("/predict", _body({"features": ROW, "request_id": ""}), JSON),
    "a long request id": ("/predict", _body({"features": ROW, "request_id": "x" * 65}), JSON),
    "features null": ("/predict", _body({"features": None}), JSON),
    "batch ok": ("/predict/batch", _body({"rows": [{"features": ROW, "request_id": "{id}"}]}),
                 JSON),
    "batch, no rows": ("/predict/batch", _body({"rows": []}), JSON),
    "batch, a bad row": ("/predict/batch", _body({"rows": [{"features": ROW},
                                                           {"features": {**ROW, "size": 1}}]}),
                         JSON),
    "batch, too many rows": ("/predict/batch", _body({"rows": [{"features": ROW}] * 1001}),
                             JSON),
    "batch, not JSON": ("/predict/batch", b"{", JSON),
}


def _answers(settings: Settings, prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every case's (status, content type, body with the request ids made neutral), and
    the OpenAPI document."""
    out: dict[str, Any] = {}
    with TestClient(create_app(settings)) as client:
        for name, (path, body, headers) in CASES.items():
            rid = f"{prefix}-{len(out)}"
            response = client.post(path, content=body.replace(b"{id}", rid.encode()),
                                    headers=headers)
            out[name] = (response.status_code, response.headers["content-type"],
                         response.content.replace(rid.encode(), b"{id}"))
        return out, client.get("/openapi.json").json()


def test_every_body_gets_fastapis_own_answer_and_the_document_is_the_same(
        served_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, fast_document = _answers(served_settings, "fast")
    monkeypatch.setattr(app_module, "JsonBodyRoute", APIRoute)
    generic, generic_document = _answers(served_settings, "generic")
    assert fast == generic
    assert fast_document == generic_document
    assert fast["ok"][0] == 200 and fast["a lone surrogate"][0] == 422
    assert fast["not UTF-8"][0] == 400 and fast["too large a number"][0] == 422


def test_a_good_body_skips_fastapis_dependency_solving(
        served_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    solved: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counting(*args: Any, **kwargs: Any) -> Any:
        solved.append(kwargs["request"].url.path)
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    with TestClient(create_app(served_settings)) as client:
        assert client.post("/predict", json={"features": ROW}).status_code == 200
        assert client.post("/predict/batch", json={"rows": [{"features": ROW}]}
                           ).status_code == 200
        assert client.post("/predict", json={"features": {}}).status_code == 422
    assert solved == ["/predict"]  # only the refused body went FastAPI's way


def test_a_good_body_skips_the_router_and_a_refused_one_gets_its_answer_there(
        served_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """DirectRoutes answers a JSON POST to /predict before Starlette's router; a body the
    fast validation refuses, and any other content type, still reach the route."""
    handled: list[str] = []
    handle = starlette.routing.Route.handle

    async def counting(self: starlette.routing.Route, scope: Any, *args: Any) -> None:
        handled.append(scope["path"])
        await handle(self, scope, *args)

    monkeypatch.setattr(starlette.routing.Route, "handle", counting)
    with TestClient(create_app(served_settings)) as client:
        assert client.post("/predict", json={"features": ROW}).status_code == 200
        assert client.post("/predict/batch", json={"rows": [{"features": ROW}]}
                           ).status_code == 200
        assert handled == []
        assert client.post("/predict", json={"features": {}}).status_code == 422
        assert client.post("/predict", content=_body({"features": ROW}),
                           headers={"content-type": "text/plain"}).status_code == 422
        assert client.get("/healthz").status_code == 200
    assert handled == ["/predict", "/predict", "/healthz"]
