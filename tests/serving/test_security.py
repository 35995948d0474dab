"""Secure by default: admin routes closed without a token, cross-origin state changes and
/ws handshakes refused, /api/runs without internals, the token set up by `serve`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from tests.served_model import example_rows

from driftloop.config import RESOLVED_ENV, Settings
from driftloop.registry import ModelRegistry
from driftloop.serving.app import create_app
from driftloop.serving.auth import (
    AdminAuthError,
    configured_token,
    public_run,
    setup_admin_auth,
)
from driftloop.training.runs import RunStore, Trigger

ADMIN = {"Authorization": "Bearer s3cret"}


def test_without_a_token_admin_routes_are_disabled_unless_insecure(
        served_settings: Settings) -> None:
    closed = served_settings.model_copy(update=dict(admin_token=None))
    with TestClient(create_app(closed)) as client:
        for response in (client.post("/api/rollback"), client.post("/api/retrain"),
                         client.put("/api/traffic", json={"mode": "off"}),
                         client.post("/api/models/1/promote")):
            assert response.status_code == 403, response.text
            assert "no admin token" in response.json()["error"]["message"]
    opened = closed.model_copy(update=dict(insecure_no_admin_auth=True))
    with TestClient(create_app(opened)) as client:
        assert client.put("/api/traffic", json={"mode": "off"}).status_code == 200


def test_cross_origin_state_changes_and_websockets_are_refused(
        served_settings: Settings) -> None:
    allowed = served_settings.model_copy(update=dict(allowed_origins=("https://ops.example",)))
    row = {"features": example_rows(1)[0]}
    with TestClient(create_app(allowed), base_url="http://testserver") as client:
        evil = {"Origin": "https://evil.example"}
        for response in (client.post("/predict", json=row, headers=evil),
                         client.post("/feedback", json={"request_id": "x", "label": 1},
                                     headers=evil),
                         client.post("/api/rollback", headers={**ADMIN, **evil}),
                         client.put("/api/traffic", json={"mode": "off"},
                                    headers={**ADMIN, "Origin": "null"})):
            assert response.status_code == 403, response.text
            assert response.json()["error"]["field"] == "Origin"
        assert client.get("/api/state", headers=evil).status_code == 200  # reads are fine
        for origin in ("http://testserver", "https://ops.example", None):
            headers = {"Origin": origin} if origin else {}
            assert client.post("/predict", json=row, headers=headers).status_code == 200
        with pytest.raises(WebSocketDisconnect) as refused, \
                client.websocket_connect("/ws", headers=evil) as ws:
            ws.receive_json()
        assert refused.value.code == 1008
        with client.websocket_connect("/ws", headers={"Origin": "http://testserver"}) as ws:
            assert ws.receive_json()["type"] == "snapshot"


def test_runs_show_no_log_path_or_traceback_without_the_token(
        served_settings: Settings) -> None:
    with TestClient(create_app(served_settings)) as client:
        reg = ModelRegistry.open(served_settings.database_url,
                                 artifacts=served_settings.data_dir)
        store = RunStore(reg.engine, "cancer")
        run = store.trigger(Trigger.now("manual", f"from {served_settings.data_dir}/x.csv"))
        assert run.run is not None
        secret = (f"Traceback (most recent call last):\n  File \"{Path.cwd()}/train.py\", "
                  "line 3\nValueError: boom")
        store.log(run.run.id, secret)
        public = client.get("/api/runs").json()["runs"]
        text = repr(public)
        assert public and "log_tail" not in public[0]
        assert str(served_settings.data_dir) not in text and str(Path.cwd()) not in text
        assert "x.csv" in text  # the file's name stays, its folder goes
        full = client.get("/api/runs", headers=ADMIN).json()["runs"]
        assert any(secret in line for line in full[-1]["log_tail"])


def test_public_run_cuts_tracebacks_and_absolute_paths() -> None:
    run = {"reason": "failed: [Errno 2] No such file: '/srv/data/artifacts/models/x/1'",
           "evidence": {"error": "Traceback (most recent call last):\n  File \"/a/b.py\""},
           "transitions": [{"reason": "ok, 3/4 done"}], "log_tail": ["secret"]}
    assert public_run(run) == {
        "reason": "failed: [Errno 2] No such file: '…/1'",
        "evidence": {"error": "(traceback withheld)"},
        "transitions": [{"reason": "ok, 3/4 done"}]}


def test_serve_generates_a_token_once_and_stores_it_owner_only(
        tmp_path: Path) -> None:
    said: list[str] = []
    settings = Settings(data_dir=tmp_path)
    resolved = setup_admin_auth(settings, from_command_line=False, echo=said.append)
    path = tmp_path / "admin-token"
    token = path.read_text().strip()
    assert len(token) >= 32 and token in said[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolved.admin_token_file == path
    again = setup_admin_auth(settings, from_command_line=False, echo=said.append)
    assert path.read_text().strip() == token and token not in said[1]  # printed once
    worker = Settings.load(env={RESOLVED_ENV: again.to_blob()})  # what a worker reads
    assert configured_token(worker.admin_token, worker.admin_token_file) == token


def test_a_token_on_the_command_line_warns_and_a_shared_token_file_is_refused(
        tmp_path: Path) -> None:
    said: list[str] = []
    setup_admin_auth(Settings(data_dir=tmp_path, admin_token="t0k3n"),
                     from_command_line=True, echo=said.append)
    assert "visible" in said[0] and "ps" in said[0] and "t0k3n" not in " ".join(said)
    shared = tmp_path / "token"
    shared.write_text("t0k3n\n")
    shared.chmod(0o644)
    with pytest.raises(AdminAuthError, match="readable by other users"):
        setup_admin_auth(Settings(data_dir=tmp_path, admin_token_file=shared),
                         from_command_line=False, echo=said.append)
