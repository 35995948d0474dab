"""Real `driftloop serve` processes (uvicorn) on loopback: lifecycle and multi-worker
convergence on a promotion."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.e2e.processes import start_server
from tests.served_model import cancer_frame, example_rows, push
from websockets.sync.client import connect

from driftloop.config import Settings
from driftloop.data.predictions import PredictionLog
from driftloop.registry import ModelRegistry

ADMIN = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def server(served_settings: Settings, request: pytest.FixtureRequest) -> Iterator[str]:
    proc, url = start_server(served_settings, getattr(request, "param", 1))
    yield url
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_a_real_server_predicts_logs_and_shuts_down_cleanly(
    served_settings: Settings,
) -> None:
    proc, url = start_server(served_settings, 1)
    with httpx.Client(base_url=url, timeout=10) as client:
        for i, row in enumerate(example_rows(20)):
            response = client.post("/predict", json={"features": row, "request_id": f"p-{i}"})
            assert response.status_code == 200, response.text
        assert client.post("/predict", json={"features": {}}).status_code == 422
    proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal: exit status -SIGTERM.
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    log = PredictionLog(ModelRegistry.open(served_settings.database_url,
                                           artifacts=served_settings.data_dir).engine)
    assert log.count() == 20  # flushed on shutdown: nothing logged is lost


@pytest.mark.parametrize("server", [2], indirect=True)
def test_every_worker_serves_the_new_champion_within_a_second(
    server: str, served_settings: Settings
) -> None:
    reg = ModelRegistry.open(served_settings.database_url, artifacts=served_settings.data_dir)
    champion = reg.get_champion("cancer")
    assert champion is not None
    v2 = push(reg, cancer_frame(), champion.dataset_id or "", champion.dataset_sha256 or "",
              c=0.1)
    row = example_rows(1)[0]
    promoted = httpx.post(f"{server}/api/models/{v2}/promote", headers=ADMIN, timeout=10)
    assert promoted.status_code == 200
    time.sleep(1.0)  # the follower polls every 0.5 s
    # A fresh connection per request lands on either worker.
    seen = {httpx.post(f"{server}/predict", json={"features": row}, timeout=10)
            .json()["model_version"] for _ in range(40)}
    assert seen == {v2}
    # /metrics sums every worker's counters (prometheus multiprocess mode).
    text = httpx.get(f"{server}/metrics", timeout=10).text
    total = sum(s.value for family in text_string_to_metric_families(text)
                for s in family.samples if s.name == "driftloop_requests_total")
    assert total == 40


@pytest.mark.parametrize("server", [2], indirect=True)
def test_drift_is_judged_over_all_workers_traffic(server: str) -> None:
    rows = example_rows(400, seed=11)
    deadline = time.monotonic() + 3.5  # spread over several one-second panes
    sent = 0
    while time.monotonic() < deadline:
        row = rows[sent % len(rows)]
        assert httpx.post(f"{server}/predict", json={"features": row}, timeout=10
                          ).status_code == 200
        sent += 1

    def merged() -> dict[str, object] | None:
        """The leader's report once it holds closed panes from both workers."""
        report = httpx.get(f"{server}/api/drift", timeout=10).json()["report"]
        if report and report.get("workers") == 2 and int(report["window_size"]) > 0:
            return report  # type: ignore[no-any-return]
        return None

    limit = time.monotonic() + 10
    while merged() is None:
        assert time.monotonic() < limit, "no merged report from both workers"
        time.sleep(0.3)
    report = merged()
    assert report is not None and 0 < int(report["window_size"]) <= sent  # type: ignore[call-overload]
    # Every worker's dashboard feed shows the merged view: connect twice (each connection
    # may land on either worker) and wait for drift points with both workers' traffic.
    for _ in range(2):
        with connect(server.replace("http", "ws", 1) + "/ws", open_timeout=10) as ws:
            snapshot = json.loads(ws.recv(timeout=10))
            assert snapshot["type"] == "snapshot"
            history = snapshot["data"]["drift"]["history"]
            while not history:
                frame = json.loads(ws.recv(timeout=10))
                if frame["type"] == "drift" and frame["data"]["point"]:
                    history = [frame["data"]["point"]]
            assert set(history[-1]["features"]) == set(row)
