"""The contract (serving/schemas.py): what /openapi.json documents, what the server sends
over HTTP and /ws, strict numbers in bodies, one error envelope, and the generated files
(JSON Schema, TypeScript, dashboard fixtures) kept current."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient
from tests.served_model import example_rows

from driftloop.config import Settings
from driftloop.events import Event
from driftloop.serving import schemas
from driftloop.serving.app import create_app
from driftloop.training import runs

ROOT = Path(__file__).resolve().parents[2]
ADMIN = {"Authorization": "Bearer s3cret"}
BODY = {403, 408, 413, 422}  # a cross-origin state change, a slow, large or bad body
ADMIN_ONLY = {401, 403}
#: The error statuses each operation really answers, and so documents.
ERRORS: dict[tuple[str, str], set[int]] = {
    ("get", "/healthz"): set(),
    ("get", "/readyz"): {503},
    ("post", "/predict"): BODY | {503},
    ("post", "/predict/batch"): BODY | {503},
    ("post", "/feedback"): BODY | {404, 409, 503},
    ("post", "/feedback/batch"): BODY | {503},
    ("get", "/api/state"): {503},
    ("get", "/api/drift"): {503},
    ("get", "/api/models"): {503},
    ("get", "/api/runs"): {422, 503},
    ("post", "/api/retrain"): BODY | ADMIN_ONLY | {503},
    ("post", "/api/models/{version}/promote"): BODY | ADMIN_ONLY | {404, 409, 503},
    ("post", "/api/rollback"): BODY | ADMIN_ONLY | {409, 503},
    ("put", "/api/traffic"): BODY | ADMIN_ONLY | {503},
}


@pytest.fixture
def client(served_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(served_settings)) as test_client:
        yield test_client


def _ref(content: dict[str, Any]) -> str:
    return str(content["application/json"]["schema"].get("$ref", ""))


def test_every_operation_documents_its_answer_and_its_errors(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operations = {(method, path): op for path, item in document["paths"].items()
                  for method, op in item.items()}
    assert set(operations) == set(ERRORS)
    for key, op in operations.items():
        success = [s for s in op["responses"] if s.startswith("2")]
        assert len(success) == 1 and _ref(op["responses"][success[0]]["content"]), key
        documented = {int(s) for s in op["responses"] if not s.startswith("2")}
        assert documented == ERRORS[key], key
        for status in documented - ({503} if key[1] == "/readyz" else set()):
            assert _ref(op["responses"][str(status)]["content"]).endswith("/ErrorResponse")
        admin = documented >= ADMIN_ONLY
        assert (op.get("security") == [{"admin token": []}]) == admin, key
    assert document["components"]["securitySchemes"]["admin token"] == {
        "type": "http", "scheme": "bearer",
        "description": "The admin token: `Authorization: Bearer <token>`."}
    assert "HTTPValidationError" not in document["components"]["schemas"]


@pytest.mark.parametrize("value", ["1", " 1e3 ", False])
def test_a_string_or_a_boolean_where_a_number_goes_is_a_422_naming_it(
        client: TestClient, value: object) -> None:
    row = {**example_rows(1)[0], "mean radius": value}
    calls = [(client.post("/predict", json={"features": row}), "features.mean radius"),
             (client.post("/predict/batch", json={"rows": [{"features": row}]}),
              "rows.0.features.mean radius"),
             (client.put("/api/traffic", headers=ADMIN,
                         json={"mode": "shadow", "shadow_fraction": value}), "shadow_fraction")]
    if isinstance(value, str):  # nor a string where a boolean goes
        calls.append((client.post("/feedback", json={"request_id": "r", "label": 1,
                                                      "overwrite": value}), "overwrite"))
    for response, field in calls:
        assert response.status_code == 422, response.text
        error = schemas.ErrorResponse.model_validate(response.json()).error
        assert error.field == field and error.status == 422


def test_any_json_number_is_a_number(client: TestClient) -> None:
    row = {**example_rows(1)[0], "mean radius": 14}  # an integer where a float goes
    assert client.post("/predict", json={"features": row}).status_code == 200
    answer = client.put("/api/traffic", headers=ADMIN, json={"mode": "canary", "weight": 1})
    assert answer.status_code == 200 and answer.json()["traffic"]["weight"] == 1.0


def test_malformed_bodies_and_unknown_routes_get_the_envelope(client: TestClient) -> None:
    bad = client.post("/feedback", content=b'{"request_id": ', headers={
        "content-type": "application/json"})
    assert bad.status_code == 422
    error = schemas.ErrorResponse.model_validate(bad.json()).error
    assert error.field == "body" and error.message.startswith("body: not valid JSON")
    missing = client.get("/no/such/route")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"status": 404, "message": "Not Found", "field": None}}
    wrong = client.delete("/predict")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert schemas.ErrorResponse.model_validate(wrong.json()).error.status == 405
    unauthorised = client.post("/api/rollback")
    assert unauthorised.status_code == 401
    assert schemas.ErrorResponse.model_validate(unauthorised.json()).error.field == \
        "Authorization"


def test_every_frame_the_hub_sends_matches_the_contract(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="driftloop.serving.schemas")
    seen: set[str] = set()
    with client.websocket_connect("/ws") as ws:
        deadline = time.monotonic() + 60
        for row in example_rows(20):
            client.post("/predict", json={"features": row})
        client.post("/api/retrain", headers=ADMIN, json={"reason": "contract test"})
        client.put("/api/traffic", headers=ADMIN, json={"mode": "shadow"})
        ws.send_json({"type": "ping"})
        while not {"snapshot", "metrics", "run", "state", "traffic", "pong"} <= seen:
            assert time.monotonic() < deadline, f"only {sorted(seen)} frames arrived"
            frame = ws.receive_json()
            schemas.FRAME.validate_python(frame)
            seen.add(frame["type"])
    assert "does not match the contract" not in caplog.text


def test_a_frame_off_the_contract_is_logged_and_still_sent(
        caplog: pytest.LogCaptureFixture) -> None:
    wrong = {"at": 1.0, "requests_per_s": "many"}
    with caplog.at_level(logging.ERROR, logger="driftloop.serving.schemas"):
        assert schemas.frame_data("metrics", wrong) is wrong
    assert "a metrics frame does not match the contract" in caplog.text


def test_a_delta_is_built_and_checked_once_however_many_clients_relay_it() -> None:
    built: list[Event] = []
    state = {"model": "m", "generation": 1, "champion": None, "candidate": None,
             "traffic": {"mode": "off", "weight": 0.0, "shadow_fraction": 1.0,
                         "shares": {"champion": 1.0, "candidate": 0.0, "shadow": 0.0}},
             "alarms": 0, "loop": {"state": "IDLE", "run_id": None, "cooldown_until": None}}

    def build(event: Event) -> dict[str, Any]:
        built.append(event)
        return {"type": event.topic, "data": event.data}

    deltas = schemas.DeltaFrames(build, size=2)
    event = Event("state", state, 1, 0.0)
    assert deltas(event) == deltas(event) == {"type": "state", "data": state}
    assert built == [event]
    for seq in (2, 3):
        deltas(Event("state", state, seq, 0.0))
    deltas(event)  # pushed out by the two newer ones: built again
    assert len(built) == 4


def test_the_loop_states_are_the_state_machines() -> None:
    machine = {runs.IDLE, runs.SNAPSHOTTING, runs.TRAINING, runs.EVALUATING, runs.SHADOWING,
               runs.PROMOTED, runs.REJECTED, runs.COOLDOWN, runs.FAILED}
    assert set(get_args(schemas.LoopStateName)) == machine


def test_the_generated_schema_types_and_fixtures_are_current() -> None:
    """dashboard/src/generated/ (JSON Schema, TypeScript) and dashboard/tests/fixtures are
    regenerated from the models and compared (scripts/gen_contract.py)."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_contract.py"),
                             "--check"], check=False, capture_output=True, text=True,
                            timeout=120, env={"PYTHONPATH": str(ROOT / "src"),
                                              "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
