"""Property-based requests generated from the server's own OpenAPI schema: no 5xx, ever,
on both backends (PostgreSQL refuses characters that SQLite stores, such as NUL), and every
answer is one the schema documents: its status, content type and body (the contract of
serving/schemas.py, errors included).

The server runs with its admin routes open (``--insecure-no-admin-auth``) so that the
mutating endpoints are exercised too (promotions of random versions, rollbacks, traffic
changes), against a real uvicorn. Each backend's run is bounded (30 cases an operation).
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.conftest import POSTGRES_DSN
from tests.e2e.processes import start_server
from tests.served_model import served_settings_in

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_schema(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    url_of_db, schema = "", f"dl_fuzz_{uuid.uuid4().hex[:12]}"
    if request.param == "postgresql":
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        host = POSTGRES_DSN.removeprefix("postgresql://")
        url_of_db = f"postgresql+psycopg://{host}?options=-csearch_path%3D{schema}"
    proc, url = start_server(served_settings_in(folder, url_of_db), 1, admin_token=None,
                             env={"DRIFTLOOP_INSECURE_NO_ADMIN_AUTH": "true",
                                  "DRIFTLOOP_DATABASE_URL": url_of_db})
    try:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        for path in folder.glob("server-*.log"):
            text = path.read_text()
            assert "Traceback" not in text, text[-3000:]  # no failure hidden behind a 4xx
        if request.param == "postgresql":
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.slow
def test_no_request_gets_a_server_error_or_an_undocumented_answer(api_schema: Any) -> None:
    # Each operation gets its own Hypothesis run over cases drawn from its schema (the
    # schemathesis pytest plugin does not run under pytest 9, so the loop is explicit).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/predict/batch", "/feedback",
                                              "/api/traffic", "/api/rollback"}
    for operation in operations:

        @settings(max_examples=30, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate],  # report failures, don't shrink
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            response = case.call(timeout=30)
            assert response.status_code < 500, (case.method, case.path, case.body,
                                                response.text)
            case.validate_response(response, checks=CHECKS)

        call()
