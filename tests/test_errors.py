"""One exception tree: every class is a DriftloopError, old bases hold, and only
driftloop's client-facing errors become a 4xx (a bare ValueError is a 500)."""

from __future__ import annotations

import ast
import importlib
import logging
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import driftloop
from driftloop.data.predictions import PredictionInputError, UnknownRequestError
from driftloop.drift import DriftInputError
from driftloop.errors import (
    ConflictError,
    DriftloopError,
    InputError,
    NotFoundError,
    UnavailableError,
)
from driftloop.registry import ModelNotFoundError, PromotionConflictError
from driftloop.serving.batching import QueueFullError
from driftloop.serving.errors import ErrorGuard

SRC = Path(driftloop.__file__).parent


def exception_classes() -> list[type[BaseException]]:
    """Every exception class defined in src/driftloop, found by reading the source."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        classes = [n.name for n in ast.walk(ast.parse(path.read_text()))
                   if isinstance(n, ast.ClassDef) and n.bases]
        if not classes:
            continue
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        loaded = importlib.import_module(module.removesuffix(".__init__"))
        found += [cls for name in classes
                  if isinstance(cls := getattr(loaded, name, None), type)
                  and issubclass(cls, BaseException)]
    return found


def test_every_exception_class_is_a_driftloop_error() -> None:
    classes = exception_classes()
    assert len(classes) >= 35
    assert [c.__qualname__ for c in classes if not issubclass(c, DriftloopError)] == []


@pytest.mark.parametrize(("error", "old_base"), [
    (DriftInputError, ValueError), (PredictionInputError, ValueError),
    (UnknownRequestError, LookupError), (ModelNotFoundError, LookupError),
    (QueueFullError, RuntimeError),
])
def test_the_old_bases_still_hold(error: type[Exception], old_base: type[Exception]) -> None:
    assert issubclass(error, old_base) and issubclass(error, DriftloopError)


def test_the_drift_package_imports_nothing_from_the_rest_of_driftloop() -> None:
    for path in (SRC / "drift").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert all(n.startswith("driftloop.drift") or not n.startswith("driftloop")
                       for n in names), (path.name, names)


def raising(exc: Exception) -> FastAPI:
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    app.add_middleware(ErrorGuard)
    return app


def test_a_bare_value_error_is_a_500_with_the_envelope_and_a_logged_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    secret = ValueError("postgresql://admin:hunter2@db/prod is down")
    with caplog.at_level(logging.ERROR, logger="driftloop.serving.errors"):
        response = TestClient(raising(secret)).get("/boom")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["status"] == 500 and "ValueError" in error["message"]
    assert "hunter2" not in response.text
    assert caplog.records and caplog.records[0].exc_info is not None
    assert TestClient(raising(KeyError("x"))).get("/boom").status_code == 500


@pytest.mark.parametrize(("exc", "status", "field"), [
    (PredictionInputError("not a number", field="label"), 422, "label"),
    (DriftInputError("not a column of the reference", feature="age"), 422, "age"),
    (InputError("bad"), 422, None),
    (ModelNotFoundError("no version 9"), 404, None),
    (NotFoundError("gone"), 404, None),
    (PromotionConflictError("lost the race"), 409, None),
    (ConflictError("busy"), 409, None),
    (QueueFullError("full"), 503, None),
    (UnavailableError("later"), 503, None),
    (DriftloopError("a server-side failure"), 500, None),
])
def test_driftloop_errors_get_their_kinds_status(exc: Exception, status: int,
                                                field: str | None) -> None:
    response = TestClient(raising(exc)).get("/boom")
    assert response.status_code == status
    assert response.json()["error"]["field"] == field
    if status == 503:
        assert response.headers["Retry-After"] == "1"
