"""WS /ws: a snapshot on connect in PROTOCOL.md's shape, then typed deltas as things change;
a client that falls behind is resynchronised with a snapshot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from tests.served_model import example_rows, served_settings_in

from driftloop.config import Settings
from driftloop.serving.app import create_app

SNAPSHOT_KEYS = {"model", "state", "drift", "runs", "lineage", "traffic", "metrics"}


def _next(ws: Any, kind: str, limit: int = 200, when: Any = lambda data: True
          ) -> dict[str, Any]:
    for _ in range(limit):
        frame = ws.receive_json()
        if frame["type"] == kind and when(frame["data"]):
            return frame
    raise AssertionError(f"no {kind} frame in {limit}")


def test_a_client_gets_a_snapshot_then_deltas(served_settings: Settings) -> None:
    with TestClient(create_app(served_settings)) as client, client.websocket_connect("/ws") as ws:
        first = ws.receive_json()
        assert first["type"] == "snapshot" and first["seq"] == 1
        data = first["data"]
        assert set(data) == SNAPSHOT_KEYS
        assert data["state"]["champion"]["version"] == 1
        assert data["state"]["loop"]["state"] == "IDLE"
        assert data["lineage"]["versions"][0]["status"] == "champion"
        assert data["traffic"]["current"]["mode"] == "off"
        for row in example_rows(5):
            assert client.post("/predict", json={"features": row}).status_code == 200
        for row in example_rows(100, seed=1):  # traffic until a metrics point has seen some
            client.post("/predict", json={"features": row})
            frame = ws.receive_json()
            if frame["type"] == "metrics" and frame["data"]["latency_p50_ms"] is not None:
                break
        else:
            raise AssertionError("no metrics point with latencies")
        assert frame["seq"] > 1 and frame["data"]["requests_per_s"] >= 0
        assert set(frame["data"]) == {"at", "requests_per_s", "latency_p50_ms", "latency_p99_ms",
                                      "errors_per_s", "observed", "dropped", "labelled"}
        run = client.post("/api/retrain", headers={"Authorization": "Bearer s3cret"},
                          json={"reason": "from the test"}).json()
        delta = _next(ws, "run")
        assert delta["data"]["id"] == run["run_id"]
        assert delta["data"]["trigger"]["kind"] == "manual"
        ws.send_json({"type": "ping"})
        assert _next(ws, "pong")["data"] == {}
        _next(ws, "state", when=lambda d: d["loop"]["state"] != "IDLE")
        metrics = client.get("/metrics").text
        assert 'driftloop_loop_state{model="cancer",state="IDLE"} 0.0' in metrics
        assert 'state="SNAPSHOTTING"} 1.0' in metrics or 'state="TRAINING"} 1.0' in metrics


def test_a_lagging_client_is_sent_a_fresh_snapshot(served_settings: Settings) -> None:
    with TestClient(create_app(served_settings)) as client, client.websocket_connect("/ws") as ws:
        assert ws.receive_json()["type"] == "snapshot"
        service = client.app.state.service  # type: ignore[attr-defined]

        def flood() -> None:  # runs on the server's loop: the client cannot read meanwhile
            for i in range(1000):  # far more than one client's buffer
                service.bus.publish("log", {"run_id": "r", "line": f"line {i}", "at": 0})

        assert client.portal is not None
        client.portal.call(flood)
        logs = 0
        while (frame := ws.receive_json())["type"] != "snapshot":
            logs += frame["type"] == "log"
            assert logs < 1000, "every delta arrived: the client was never resynchronised"
        assert frame["data"]["state"]["champion"]["version"] == 1


def _shifted_rows(n: int) -> list[dict[str, object]]:
    """``n`` rows whose mean radius is tripled: every evaluation of them drifts."""
    rows = example_rows(n, seed=2)
    for row in rows:
        row["mean radius"] = float(row["mean radius"]) * 3  # type: ignore[arg-type]
    return rows


def _shifted_traffic(client: TestClient, n: int) -> None:
    for row in _shifted_rows(n):
        assert client.post("/predict", json={"features": row}).status_code == 200


def _until(check: Any, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _story(snapshot: dict[str, Any]) -> dict[str, int]:
    return {"drift points": len(snapshot["drift"]["history"]),
            "alarms": len(snapshot["drift"]["alarms"]),
            "traffic points": len(snapshot["traffic"]["history"]),
            "metrics points": len(snapshot["metrics"]["history"])}


def test_a_late_client_and_a_restarted_server_tell_the_whole_drift_story(
        db_url: str, tmp_path: Path) -> None:
    """The snapshot carries the drift evaluations, the alarms, the traffic split and the
    request rate seen so far: a client connecting after the alarm sees the story that a
    client watching from the start saw, and so does one served after a restart (the
    history is in the database, not in one process's memory)."""
    settings = served_settings_in(tmp_path, database_url=db_url)
    with TestClient(create_app(settings)) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        _shifted_traffic(client, 600)  # panes of 100: six evaluations, an alarm after two
        _until(lambda: service.alarms.open, "an alarm")
        _until(lambda: (service.monitor.detector.last_report or 0) and
               service.monitor.detector.last_report.window_size >= 200, "a full window")
        api = client.get("/api/drift").json()
        assert api["report"]["drifted"]

        def snapshot() -> dict[str, Any]:
            with client.websocket_connect("/ws") as ws:
                frame = ws.receive_json()
                assert frame["type"] == "snapshot"
                return frame["data"]  # type: ignore[no-any-return]

        _until(lambda: _story(snapshot())["drift points"] >= 5, "five drift points", 30)
        late = snapshot()
        assert late["drift"]["report"] is not None and late["drift"]["report"]["drifted"]
        story = _story(late)
        assert story["drift points"] >= 5 and story["alarms"] == 1, story
        assert story["traffic points"] >= 1 and story["metrics points"] >= 1, story
        drifted = [p for p in late["drift"]["history"] if p["drifted"]]
        assert len(drifted) >= 2 and drifted[-1]["features"]["mean radius"]["drifted"]
        assert late["drift"]["alarms"][0]["id"] == service.alarms.open[0].id
        pane_ids = [p["pane_id"] for p in late["drift"]["history"]]
        assert pane_ids == sorted(pane_ids)

    with TestClient(create_app(settings)) as client, client.websocket_connect("/ws") as ws:
        after = ws.receive_json()["data"]
        assert client.app.state.service.alarms.open == []  # type: ignore[attr-defined]
        assert after["drift"]["history"][:len(late["drift"]["history"])] == \
            late["drift"]["history"]
        assert after["drift"]["alarms"] == late["drift"]["alarms"]
        # No evaluation yet in the new process: the newest recorded report stands in.
        assert after["drift"]["report"]["evaluated_at"] == after["drift"]["history"][-1]["at"]
        assert _story(after)["traffic points"] >= story["traffic points"]
        assert _story(after)["metrics points"] >= story["metrics points"]


def test_a_follower_worker_serves_the_drift_leaders_history(db_url: str, tmp_path: Path) -> None:
    """Two workers of one model on one database: only the drift leader evaluates and
    records, and a client that reaches the other worker is told the same story."""
    settings = served_settings_in(tmp_path, database_url=db_url).model_copy(
        update={"pane_seconds": 1.0})
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        services = [c.app.state.service for c in (first, second)]  # type: ignore[attr-defined]
        _until(lambda: sum(s.monitor.leader.is_leader for s in services) == 1, "one drift leader")
        leader, follower = sorted(services, key=lambda s: not s.monitor.leader.is_leader)
        follower_client = first if follower is services[0] else second
        rows = _shifted_rows(100)
        deadline = time.monotonic() + 60
        while not leader.alarms.open:  # spread over one-second panes, on both workers
            assert time.monotonic() < deadline, "no alarm from the merged drift view"
            for client in (first, second):
                assert client.post("/predict/batch", json={
                    "rows": [{"features": row} for row in rows]}).status_code == 200
            time.sleep(0.1)

        def tell() -> dict[str, Any]:
            with follower_client.websocket_connect("/ws") as ws:
                return ws.receive_json()["data"]  # type: ignore[no-any-return]

        # The leader records the alarm in the shared feed history just after raising it.
        _until(lambda: bool(tell()["drift"]["alarms"]), "the alarm in the follower's story")
        told = tell()
        assert not follower.leads() and follower.alarms.open == []
        assert told["drift"]["alarms"][0]["id"] == leader.alarms.open[0].id
        points = told["drift"]["history"]
        assert len(points) >= 2 and all(p["drifted"] for p in points[-2:])
        panes = [p["pane_id"] for p in points]
        assert panes == sorted(set(panes)), "each evaluated pane once, in order"
        assert told["drift"]["report"]["workers"] == 2
