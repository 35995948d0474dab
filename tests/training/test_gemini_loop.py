"""The whole loop with a Gemini agent as the model, against the local stand-in of Google's
API: a GeminiAgent champion serves through the router; a manual retrain snapshots the
labelled traffic, tunes a model on "Vertex AI" (JSONL upload, tuning job, polling) in the
training subprocess, evaluates the tuned endpoint on the holdout, shadows it on live
traffic, and the gate promotes it. Same code as against the real service; only the host
(DRIFTLOOP_GEMINI_BASE_URL) differs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.gemini_standin import GeminiStandIn, threshold_rule, use_vertex

from driftloop.config import Settings
from driftloop.data.snapshots import SnapshotStore
from driftloop.models.gemini import GeminiAgent
from driftloop.registry import ModelRegistry
from driftloop.serving.app import create_app

pytestmark = pytest.mark.filterwarnings("ignore:The SDK's tuning implementation is experimental")

ADMIN = {"Authorization": "Bearer s3cret"}
OLD, NEW = 0.0, 0.5  # the concept: "high" above the threshold; it moves from OLD to NEW


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[GeminiStandIn]:
    """Base models answer by the old concept; a tuned endpoint has learnt the new one."""
    with GeminiStandIn(rule=threshold_rule("x", OLD), tuned_rule=threshold_rule("x", NEW)
                       ) as server:
        use_vertex(monkeypatch, tmp_path, server)  # the training subprocess inherits it
        yield server


def labelled(n: int, threshold: float, seed: int) -> pd.DataFrame:
    x = np.random.default_rng(seed).uniform(-1, 1, n)
    return pd.DataFrame({"x": x, "label": np.where(x > threshold, "high", "low")})


def champion_agent(tmp_path: Path, standin: GeminiStandIn) -> Settings:
    settings = Settings(
        model_name="agent", data_dir=tmp_path / "data", admin_token="s3cret",
        retrain_on_drift=False, trainer="driftloop.training.gemini:GeminiTuningTrainer",
        trainer_options={"base_model": "gemini-2.5-flash", "bucket_uri": "gs://dl-bucket/t",
                         "poll_initial_s": 0.01, "poll_max_s": 0.05,
                         "gcs_endpoint": standin.base_url,
                         "agent_options": {"timeout_s": 10.0}},
        min_train_rows=100, snapshot_rows=300, min_samples=60, watch_samples=50,
        # a tuned endpoint answers one row per call: give the mirrored candidate time
        max_batch=8, candidate_timeout=20.0)
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    start = datetime.now(UTC) - timedelta(hours=1)
    frame = labelled(200, OLD, seed=1).assign(
        request_id=[f"t{i}" for i in range(200)],
        event_timestamp=[start + timedelta(seconds=i) for i in range(200)])
    snapshot = SnapshotStore(settings.data_dir, engine=registry.engine).write(frame)
    agent = GeminiAgent(model="gemini-2.5-flash", labels=["low", "high"],
                        feature_names=["x"], batch_size=8, timeout_s=10.0)
    v1 = registry.push_candidate("agent", agent, dataset=(snapshot.id, snapshot.sha256))
    registry.promote_candidate("agent", v1.version)
    registry.engine.dispose()
    return settings


def replay(client: TestClient, frame: pd.DataFrame, prefix: str) -> list[dict[str, Any]]:
    """Predict every row, then send its label: what users and their labellers do."""
    rows = [{"features": {"x": float(x)}, "request_id": f"{prefix}{i}"}
            for i, x in enumerate(frame["x"])]
    answers = []
    for start in range(0, len(rows), 50):
        response = client.post("/predict/batch", json={"rows": rows[start:start + 50]})
        assert response.status_code == 200, response.text
        answers += response.json()["predictions"]
    items = [{"request_id": f"{prefix}{i}", "label": y} for i, y in enumerate(frame["label"])]
    assert client.post("/feedback/batch", json={"items": items}).json()["applied"] == len(items)
    return answers


def run_state(client: TestClient) -> dict[str, Any]:
    return client.get("/api/runs").json()["runs"][0]


def until(client: TestClient, states: set[str], feed: Any = None, timeout: float = 90.0
          ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    round_ = 0
    while time.monotonic() < deadline:
        run = run_state(client)
        if run["state"] in states:
            return run
        assert run["state"] != "FAILED", run
        if feed is not None:
            feed(round_)
            round_ += 1
        time.sleep(0.3)
    raise AssertionError(f"the run never reached {states}: {run_state(client)}")


@pytest.mark.slow
def test_a_gemini_agent_is_retrained_by_tuning_and_promoted(
    tmp_path: Path, standin: GeminiStandIn,
) -> None:
    settings = champion_agent(tmp_path, standin)
    with TestClient(create_app(settings)) as client:
        before = replay(client, labelled(240, NEW, seed=2), "a")  # the concept has moved
        assert {a["model_version"] for a in before} == {1}
        started = client.post("/api/retrain", headers=ADMIN, json={"reason": "new concept"})
        assert started.status_code == 202
        run = until(client, {"SHADOWING", "REJECTED"})
        assert run["state"] == "SHADOWING", (run["reason"], run["evidence"])
        holdout = run["evidence"]["holdout"]
        assert holdout["candidate"] > holdout["champion"]  # the tuned endpoint knows better

        def feed(i: int) -> None:
            replay(client, labelled(60, NEW, seed=100 + i), f"s{i}-")

        run = until(client, {"PROMOTED", "COOLDOWN", "REJECTED"}, feed)
        assert run["outcome"] == "promoted", (run["reason"], run["evidence"])
        deadline = time.monotonic() + 10  # the server follows the registry within a poll
        while (after := client.post("/predict", json={"features": {"x": 0.3}}).json())[
                "model_version"] != 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert after["model_version"] == 2 and after["output"]["prediction"] == "low"
        metrics = client.get("/metrics").text
        assert 'driftloop_gemini_requests_total{outcome="ok"}' in metrics

    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    v2 = registry.load("agent", 2)
    assert isinstance(v2, GeminiAgent) and "/endpoints/" in v2.model and v2.tuning_job
    assert registry.get_version("agent", 2).run_id == run["id"]
    [job] = standin.jobs.values()
    assert job["supervisedTuningSpec"]["trainingDatasetUri"] in standin.objects
    assert not any("s3cret" in str(r.headers) for r in standin.requests)
