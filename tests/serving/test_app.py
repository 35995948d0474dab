"""The HTTP API in-process: predictions, bad input, feedback, admin, hot swap, observation."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from tests.drift.helpers import with_version
from tests.served_model import cancer_frame, example_rows, push, served_settings_in

from driftloop import db
from driftloop.config import Settings
from driftloop.data.predictions import PredictionLog
from driftloop.drift import codec
from driftloop.registry import ModelRegistry
from driftloop.serving import schemas
from driftloop.serving.app import create_app

ADMIN = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def client(served_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(served_settings)) as test_client:
        yield test_client


def wait_until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_predict_answers_with_version_slot_and_output(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "champion": 1}
    row = example_rows(1)[0]
    body = client.post("/predict", json={"features": row, "request_id": "r-1"}).json()
    assert body["request_id"] == "r-1" and body["model_version"] == 1
    assert body["slot"] == "champion" and body["output"]["prediction"] in (0, 1)
    assert 0.0 <= body["output"]["score"] <= 1.0
    batch = client.post("/predict/batch", json={"rows": [{"features": r} for r in
                                                          example_rows(5)]}).json()
    assert len(batch["predictions"]) == 5
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Features"]
    assert set(schema["properties"]) == {"mean radius", "mean texture", "mean smoothness",
                                         "worst area", "size"}


@pytest.mark.parametrize(("body", "field"), [
    ({"features": {"mean radius": 1.0}}, "features.mean texture"),
    ({"features": {**example_rows(1)[0], "zip": 1}}, "features.zip"),
    ({"features": {**example_rows(1)[0], "mean radius": "big"}}, "features.mean radius"),
    ({"features": {**example_rows(1)[0], "size": 3}}, "features.size"),
    ({"rows": []}, "features"),
    ({"features": example_rows(1)[0], "request_id": ""}, "request_id"),
    ([1, 2], "body"),
])
def test_bad_bodies_get_422_naming_the_field(client: TestClient, body: object,
                                             field: str) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("raw", [b"{not json", b"", b'{"features": {"mean radius": NaN}}',
                                 b'{"features": {"mean radius": Infinity}}'])
def test_malformed_json_and_non_finite_numbers_are_refused(client: TestClient, raw: bytes) -> None:
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_oversize_bodies_get_413(client: TestClient) -> None:
    response = client.post("/predict", content=b"x" * 1_000_001,
                           headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["field"] == "body"


def test_feedback_joins_labels_to_logged_predictions(client: TestClient,
                                                     served_settings: Settings) -> None:
    client.post("/predict", json={"features": example_rows(1)[0], "request_id": "fb-1"})
    log = PredictionLog(ModelRegistry.open(served_settings.database_url,
                                           artifacts=served_settings.data_dir).engine)
    wait_until(lambda: log.get("fb-1") is not None)
    assert client.post("/feedback", json={"request_id": "nope", "label": 1}).status_code == 404
    assert client.post("/feedback", json={"request_id": "fb-1", "label": 1}).status_code == 200
    conflict = client.post("/feedback", json={"request_id": "fb-1", "label": 0})
    assert conflict.status_code == 409 and "overwrite" in conflict.json()["error"]["message"]
    again = client.post("/feedback", json={"request_id": "fb-1", "label": 0, "overwrite": True})
    assert again.json()["previous_label"] == 1


def test_a_label_sent_right_after_its_answer_finds_its_prediction(client: TestClient) -> None:
    """The prediction log is written just after the response; a label must not race it."""
    for round_ in range(3):
        rows = [{"features": r, "request_id": f"now-{round_}-{i}"}
                for i, r in enumerate(example_rows(60, seed=round_))]
        assert client.post("/predict/batch", json={"rows": rows}).status_code == 200
        single = client.post("/feedback", json={"request_id": rows[0]["request_id"],
                                                 "label": 1})
        assert single.status_code == 200, single.text
        batch = client.post("/feedback/batch", json={"items": [
            {"request_id": r["request_id"], "label": 0} for r in rows[1:]]}).json()
        assert batch == {"applied": 59, "unknown": [], "conflicts": []}
    unknown = client.post("/feedback/batch", json={"items": [{"request_id": "never",
                                                              "label": 1}]}).json()
    assert unknown == {"applied": 0, "unknown": ["never"], "conflicts": []}


def test_admin_endpoints_need_the_token(client: TestClient) -> None:
    assert client.post("/api/rollback").status_code == 401
    assert client.put("/api/traffic", json={"mode": "shadow"}).status_code == 401
    wrong = client.post("/api/models/1/promote", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    bad = client.put("/api/traffic", json={"mode": "blue"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "mode"
    assert client.post("/api/models/1/promote", headers=ADMIN).status_code == 409
    assert client.post("/api/models/9/promote", headers=ADMIN).status_code == 404


def test_shadow_then_promotion_swaps_without_a_failed_request(
    client: TestClient, served_settings: Settings
) -> None:
    reg = ModelRegistry.open(served_settings.database_url, artifacts=served_settings.data_dir)
    champion = reg.get_champion("cancer")
    assert champion is not None and champion.dataset_id is not None
    v2 = push(reg, cancer_frame(), champion.dataset_id, champion.dataset_sha256 or "", c=0.1)
    put = client.put("/api/traffic", json={"mode": "shadow", "shadow_fraction": 1.0},
                     headers=ADMIN)
    assert put.status_code == 200 and put.json()["traffic"]["mode"] == "shadow"
    wait_until(lambda: client.get("/api/state").json()["candidate"] is not None)
    rows = example_rows(30, seed=3)
    for i, row in enumerate(rows[:15]):
        body = client.post("/predict", json={"features": row, "request_id": f"s-{i}"}).json()
        assert body["slot"] == "champion"
    promoted = client.post(f"/api/models/{v2}/promote", headers=ADMIN,
                           json={"reason": "better"})
    assert promoted.status_code == 200
    versions = {client.post("/predict", json={"features": r}).json()["model_version"]
                for r in rows[15:]}
    assert versions == {v2}
    log = PredictionLog(reg.engine)
    wait_until(lambda: log.get("s-14") is not None)
    logged = log.get("s-14")
    assert logged is not None and logged.shadow is not None and logged.shadow["version"] == v2
    state = client.get("/api/state").json()
    assert state["champion"]["version"] == v2 and state["router"]["mirrored"] >= 15
    assert client.post("/api/rollback", headers=ADMIN).json()["champion"]["version"] == 1


def test_drift_report_appears_once_the_window_closes(client: TestClient) -> None:
    for i, row in enumerate(example_rows(220, seed=5)):
        client.post("/predict", json={"features": row, "request_id": f"d-{i}"})
    wait_until(lambda: client.get("/api/drift").json()["report"] is not None)
    report = client.get("/api/drift").json()["report"]
    assert set(report["features"]) == {"mean radius", "mean texture", "mean smoothness",
                                       "worst area", "size"}
    assert report["output"] is not None


def test_metrics_expose_requests_features_and_drift(client: TestClient) -> None:
    for i, row in enumerate(example_rows(220, seed=9)):
        client.post("/predict", json={"features": row, "request_id": f"m-{i}"})
    wait_until(lambda: client.get("/api/drift").json()["report"] is not None)

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = client.get("/metrics").text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def bins() -> float:  # observed after the answers, a batch at a time (Observer.linger)
        return sum(v for (name, labels), v in samples().items()
                   if name == "driftloop_feature_bin_total" and ("feature", "size") in labels)

    wait_until(lambda: bins() >= 220)
    assert bins() == 220
    requests = sum(v for (name, labels), v in samples().items()
                   if name == "driftloop_requests_total" and ("slot", "champion") in labels)
    assert requests == 220
    final = samples()
    assert any(name == "driftloop_drift_statistic" for name, _ in final)
    assert any(name == "driftloop_champion_version" and v == 1 for (name, _), v in
               final.items())


def test_metrics_count_every_request_with_its_real_status(client: TestClient) -> None:
    row = example_rows(1)[0]
    assert client.post("/predict", json={"features": row}).status_code == 200
    assert client.post("/predict", json={"features": {"mean radius": 1.0}}).status_code == 422
    assert client.get("/no/such/page").status_code == 404
    assert client.post("/api/rollback").status_code == 401
    text = client.get("/metrics").text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    counted = {(s.labels["method"], s.labels["route"], s.labels["status"]): s.value
               for s in samples if s.name == "driftloop_http_requests_total"}
    assert counted[("POST", "/predict", "200")] == 1
    assert counted[("POST", "/predict", "422")] == 1
    assert counted[("GET", "(unrouted)", "404")] == 1
    assert counted[("POST", "/api/rollback", "401")] == 1
    assert any(s.name == "driftloop_http_request_duration_seconds_count"
               and s.labels["route"] == "/predict" for s in samples)
    assert any(s.name.startswith("process_") for s in samples)
    assert any(s.name == "python_info" for s in samples)


def test_the_dashboards_files_and_its_websocket_add_no_series_and_no_error(
        served_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Every static file is counted under the dashboard's one route, every file it does
    not have as unrouted, and the WebSocket upgrade (not HTTP) is not counted at all."""
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>driftloop</title>")
    for name in ("index-1a2b.js", "index-3c4d.css"):
        (static / "assets" / name).write_text("/* built */")
    monkeypatch.setattr("driftloop.serving.app.STATIC", static)
    with caplog.at_level(logging.WARNING), TestClient(create_app(served_settings)) as client:
        for path in ("/", "/assets/index-1a2b.js", "/assets/index-3c4d.css"):
            assert client.get(path).status_code == 200, path
        for i in range(20):  # scanners, stale tabs: one series for all of them
            assert client.get(f"/assets/gone-{i}.js").status_code == 404
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json()["type"] == "snapshot"
            ws.send_json({"type": "ping"})
            while ws.receive_json()["type"] != "pong":
                pass
        text = client.get("/metrics").text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "driftloop_http_requests_total"]
    counted = {(s.labels["method"], s.labels["route"], s.labels["status"]): s.value
               for s in samples}
    assert counted == {("GET", "/", "200"): 3, ("GET", "(unrouted)", "404"): 20}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_api_state_is_the_feeds_state_and_what_only_this_process_knows(
        client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        state = ws.receive_json()["data"]["state"]
    answer = client.get("/api/state").json()
    assert {key: answer[key] for key in state} == state
    assert set(answer) - set(state) == {"queues", "observations", "router", "prediction_log",
                                        "worker"}
    assert state["newer_format_workers"] == {}  # one process: no other worker to be newer


def test_a_worker_on_a_newer_driftloop_shows_in_the_state_the_metrics_and_the_report(
        tmp_path: Path) -> None:
    """A rolling upgrade that reached a worker but not the drift leader: the worker's
    window is left out of the drift view, and every place an operator looks says so."""
    settings = served_settings_in(tmp_path).model_copy(update={"pane_seconds": 1.0})
    newer = codec.VERSION + 1
    with TestClient(create_app(settings)) as client:
        engine = client.app.state.service.registry.engine  # type: ignore[attr-defined]
        table = db.drift_windows

        def shipped() -> bytes | None:  # this worker's own window
            with engine.connect() as conn:
                return conn.execute(sa.select(table.c.window)).scalars().first()

        wait_until(lambda: shipped() is not None)
        blob = bytes(shipped())  # type: ignore[arg-type]
        with db.transaction(engine) as conn:  # what an upgraded worker ships
            conn.execute(table.insert().values(
                model_name="cancer", worker_id="upgraded", updated_at=datetime.now(UTC),
                window=with_version(blob, newer)))
        wait_until(lambda: client.get("/api/state").json()["newer_format_workers"]
                   == {"upgraded": newer})
        text = client.get("/metrics").text
        assert 'driftloop_drift_newer_format_workers{model="cancer"} 1.0' in text
        drift = client.get("/api/drift")
        assert drift.status_code == 200, drift.text
        report = schemas.DriftView.model_validate(drift.json()).report
        assert report is not None and report.newer_format_workers == {"upgraded": newer}
        with client.websocket_connect("/ws") as ws:
            state = ws.receive_json()["data"]["state"]
        assert state["newer_format_workers"] == {"upgraded": newer}
