"""Nothing lost: values the database cannot store, a stuck log, an unreachable database,
refused batches, retention, on both backends."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import POSTGRES_DSN
from tests.served_model import example_rows, served_settings_in

from driftloop.config import Settings
from driftloop.data.predictions import PredictionLog
from driftloop.registry import ModelRegistry
from driftloop.serving.app import create_app

ADMIN = {"Authorization": "Bearer s3cret"}


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A served champion with its registry (and prediction log) on each backend."""
    if request.param == "sqlite":
        yield served_settings_in(tmp_path)
        return
    schema = f"dl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    host = POSTGRES_DSN.removeprefix("postgresql://")
    yield served_settings_in(
        tmp_path, f"postgresql+psycopg://{host}?options=-csearch_path%3D{schema}")
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _log(settings: Settings) -> PredictionLog:
    return PredictionLog(ModelRegistry.open(settings.database_url,
                                            artifacts=settings.data_dir).engine)


NUL = "a\u0000b"
#: A PostgreSQL server that is not there (nothing listens on port 9).
DOWN = "postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=1"


def test_nul_and_lone_surrogates_get_422_everywhere_and_the_log_keeps_going(
        settings: Settings) -> None:
    row = example_rows(1)[0]
    bad_bodies = [
        ("POST", "/predict", {"features": row, "request_id": NUL}),
        ("POST", "/predict", {"features": row, "routing_key": NUL}),
        ("POST", "/predict", {"features": {**row, "size": NUL}}),
        ("POST", "/predict/batch", {"rows": [{"features": row, "request_id": "a\ud800"}]}),
        ("POST", "/feedback", {"request_id": NUL, "label": 1}),
        ("POST", "/feedback", {"request_id": "x", "label": NUL}),
        ("POST", "/feedback/batch", {"items": [{"request_id": NUL, "label": 1}]}),
        ("POST", "/api/retrain", {"reason": NUL}),
        ("PUT", "/api/traffic", {"mode": "off", "reason": NUL}),
        ("POST", "/api/rollback", {"reason": NUL}),
    ]
    with TestClient(create_app(settings)) as client:
        for method, path, body in bad_bodies:
            response = client.request(method, path, content=json.dumps(body),  # \u escapes
                                       headers={**ADMIN, "content-type": "application/json"})
            assert response.status_code == 422, (path, body, response.text)
            assert "cannot store" in response.text
        for i in range(20):
            ok = client.post("/predict", json={"features": row, "request_id": f"after-{i}"})
            assert ok.status_code == 200
        labelled = client.post("/feedback", json={"request_id": "after-19", "label": 1})
        assert labelled.status_code == 200, labelled.text
        state = client.get("/api/state").json()["prediction_log"]
        assert state["quarantined"] == 0 and state["stuck_seconds"] == 0
    assert _log(settings).count() == 20


def test_a_stuck_log_shows_in_state_and_metrics(settings: Settings, tmp_path: Path) -> None:
    with TestClient(create_app(settings)) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        writer = service.monitor.writer
        healthy = writer._log
        writer._log = PredictionLog(sa.create_engine(DOWN))
        writer._retry_delay = 0.05
        client.post("/predict", json={"features": example_rows(1)[0], "request_id": "s-1"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = client.get("/api/state").json()["prediction_log"]
            if state["failures"] >= 2:
                break
            time.sleep(0.05)
        assert state["stuck_seconds"] > 0 and state["pending"] == 1
        assert "OperationalError" in state["last_error"]
        metrics = {s.name: s.value for f in text_string_to_metric_families(
            client.get("/metrics").text) for s in f.samples}
        assert metrics["driftloop_prediction_log_stuck_seconds"] > 0
        assert metrics["driftloop_prediction_log_pending"] == 1
        writer._log = healthy  # the database is back: nothing was lost
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if client.get("/api/state").json()["prediction_log"]["pending"] == 0:
                break
            time.sleep(0.05)
    assert _log(settings).get("s-1") is not None


def test_an_unreachable_database_gives_503_with_retry_after(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        healthy = service.log
        service.log = PredictionLog(sa.create_engine(DOWN))
        try:
            for path, body in (("/feedback", {"request_id": "x", "label": 1}),
                               ("/feedback/batch", {"items": [{"request_id": "x",
                                                                "label": 1}]})):
                response = client.post(path, json=body)
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "1"
        finally:
            service.log = healthy


def test_a_refused_batch_leaves_no_trace(settings: Settings) -> None:
    small = settings.model_copy(update=dict(max_queue=100, max_batch=8))
    rows = [{"features": r, "request_id": f"b-{i}"} for i, r in enumerate(example_rows(150))]
    with TestClient(create_app(small)) as client:
        refused = client.post("/predict/batch", json={"rows": rows})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        accepted = client.post("/predict/batch", json={"rows": rows[:90]})
        assert accepted.status_code == 200
        client.post("/feedback", json={"request_id": "b-0", "label": 1})  # settles the log
        service = client.app.state.service  # type: ignore[attr-defined]
        assert service.router.champion.queue.rows == 90 + 8  # the 90, and the warm-up rows
    assert _log(settings).count() == 90


def test_retention_prunes_by_rows_and_reports_the_log_size(settings: Settings) -> None:
    capped = settings.model_copy(update=dict(retention_rows=30, retention_interval=3600))
    with TestClient(create_app(capped)) as client:
        rows = [{"features": r, "request_id": f"r-{i}"} for i, r in enumerate(example_rows(50))]
        assert client.post("/predict/batch", json={"rows": rows}).status_code == 200
        client.post("/feedback", json={"request_id": "r-0", "label": 1})  # settles the log
        retention = client.app.state.retention  # type: ignore[attr-defined]
        assert retention.run_once() == 20
        assert client.get("/api/state").json()["prediction_log"]["rows"] == 30
        metrics = {s.name: s.value for f in text_string_to_metric_families(
            client.get("/metrics").text) for s in f.samples}
        assert metrics["driftloop_prediction_log_rows"] == 30
    assert _log(settings).count() == 30
