"""Property-based requests generated from the server's own OpenAPI schema: no 5xx, ever.

The server runs without an admin token so that the mutating endpoints are exercised too
(promotions of random versions, rollbacks, traffic changes), against a real uvicorn.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from tests.e2e.processes import start_server
from tests.served_model import served_settings_in


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    proc, url = start_server(served_settings_in(folder), 1, admin_token=None)
    try:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_no_request_gets_a_server_error(api_schema: Any) -> None:
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

        call()
