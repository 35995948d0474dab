"""Gemini trainers against the local stand-in: supervised tuning on "Vertex AI" (dataset
upload, job start, polling, outcomes) and few-shot selection."""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.gemini_standin import (
    LOCATION,
    PROJECT,
    GeminiStandIn,
    TuningScript,
    use_gemini_api,
    use_vertex,
)

from driftloop.data.snapshots import Snapshot, SnapshotStore
from driftloop.models.gemini import GeminiAgent
from driftloop.registry import ModelRegistry
from driftloop.training.base import Trainer, TrainerError
from driftloop.training.gemini import GeminiFewShotTrainer, GeminiTuningTrainer

#: google-genai flags its tuning API as experimental; that is known and accepted here.
pytestmark = pytest.mark.filterwarnings("ignore:The SDK's tuning implementation is experimental")

PLACE = f"/v1beta1/projects/{PROJECT}/locations/{LOCATION}"
FAST_POLLS = {"poll_initial_s": 0.001, "poll_max_s": 0.004}
FEATURES = ["x", "y", "color"]


@pytest.fixture
def snapshot(tmp_path: Path) -> Snapshot:
    """80 labelled rows (label: x > 0), written out of time order, one y missing."""
    rng = np.random.default_rng(7)
    n = 80
    start = datetime(2026, 11, 1, tzinfo=UTC)
    frame = pd.DataFrame({
        "x": rng.normal(size=n), "y": rng.normal(size=n),
        "color": rng.choice(["red", "blue"], size=n),
        "event_timestamp": [start + timedelta(minutes=int(m)) for m in rng.permutation(n)],
        "request_id": [f"r{i}" for i in range(n)],
    })
    frame.loc[3, "y"] = np.nan
    frame["label"] = np.where(frame["x"] > 0, "high", "low")
    return SnapshotStore(tmp_path / "store").write(frame, holdout_fraction=0.25)


@pytest.fixture
def standin() -> Iterator[GeminiStandIn]:
    with GeminiStandIn() as server:
        yield server


@pytest.fixture
def vertex(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
           standin: GeminiStandIn) -> GeminiStandIn:
    use_vertex(monkeypatch, tmp_path, standin)
    return standin


def tuner(**settings: Any) -> GeminiTuningTrainer:
    options = {"base_model": "gemini-2.5-flash", "bucket_uri": "gs://dl-bucket/tuning",
               "agent_options": {"timeout_s": 5.0}, **FAST_POLLS, **settings}
    return GeminiTuningTrainer(**options)


def train_rows(snapshot: Snapshot) -> list[dict[str, Any]]:
    records = pd.read_parquet(snapshot.train_path).to_dict("records")
    return [{"x": r["x"], "y": None if math.isnan(r["y"]) else r["y"], "color": r["color"],
             "label": r["label"], "at": r["event_timestamp"]} for r in records]


def accuracy(agent: GeminiAgent, snapshot: Snapshot) -> float:
    holdout = pd.read_parquet(snapshot.holdout_path)
    outputs = agent.predict_batch(holdout[FEATURES].to_dict("records"))
    return float(np.mean([o["prediction"] == label
                          for o, label in zip(outputs, holdout["label"], strict=True)]))


# ---------------------------------------------------------------------------- tuning
def test_tuning_uploads_the_dataset_polls_the_job_and_serves_the_endpoint(
    vertex: GeminiStandIn, snapshot: Snapshot, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    trainer = tuner(epoch_count=2, gcs_endpoint=vertex.base_url)
    with caplog.at_level(logging.INFO, logger="driftloop.training"):
        agent = trainer.train(snapshot, None, {"adapter_size": "ADAPTER_SIZE_FOUR"})

    uri = f"gs://dl-bucket/tuning/{snapshot.id}/train.jsonl"
    data = vertex.objects[uri]  # uploaded through the Cloud Storage JSON API
    lines = data.decode().splitlines()
    expected = train_rows(snapshot)
    assert len(lines) == len(expected) == snapshot.manifest["rows"]["train"]
    for line, row in zip(lines, expected, strict=True):
        example = json.loads(line)
        assert example["systemInstruction"] == {"role": "system",
                                                "parts": [{"text": agent.instruction()}]}
        user, model = example["contents"]
        assert user["role"] == "user" and model["role"] == "model"
        assert json.loads(user["parts"][0]["text"]) == {k: row[k] for k in FEATURES}
        assert json.loads(model["parts"][0]["text"]) == {"prediction": row["label"]}

    job_name = f"projects/{PROJECT}/locations/{LOCATION}/tuningJobs/1000"
    create = next(r for r in vertex.requests if r.path == f"{PLACE}/tuningJobs")
    assert create.body == {
        "baseModel": "gemini-2.5-flash",
        "supervisedTuningSpec": {"trainingDatasetUri": uri, "hyperParameters": {
            "epochCount": 2, "adapterSize": "ADAPTER_SIZE_FOUR"}},
        "tunedModelDisplayName": f"driftloop-{snapshot.id}"}
    polls = [r for r in vertex.requests if r.method == "GET"]
    assert [r.path for r in polls] == [f"/v1beta1/{job_name}"] * 3  # RUNNING, RUNNING, done
    upload = next(r for r in vertex.requests if r.path.startswith("/upload/"))
    assert upload.query == {"uploadType": ["media"], "name": [f"tuning/{snapshot.id}/train.jsonl"]}

    assert agent.model == f"projects/{PROJECT}/locations/{LOCATION}/endpoints/1000"
    assert agent.tuning_job == job_name and agent.batch_size == 1
    assert agent.labels == ["high", "low"] and agent.feature_names == FEATURES
    assert agent.provenance["training_data_sha256"] == hashlib.sha256(data).hexdigest()
    assert agent.provenance["snapshot_id"] == snapshot.id
    assert "started tuning job" in caplog.text and "succeeded" in caplog.text

    assert accuracy(agent, snapshot) == 1.0
    assert vertex.generate_calls()[-1].path == f"/v1beta1/{agent.model}:generateContent"
    reg = ModelRegistry.open(f"sqlite:///{tmp_path / 'reg.db'}", artifacts=tmp_path / "art")
    version = reg.push_candidate("tuned", agent, dataset=(snapshot.id, snapshot.sha256))
    assert reg.load("tuned", version.version) == agent


def test_the_local_uploader_copies_the_dataset(
    vertex: GeminiStandIn, snapshot: Snapshot, tmp_path: Path,
) -> None:
    agent = tuner(upload_dir=str(tmp_path / "bucket")).train(snapshot, None, {})
    copy = tmp_path / "bucket" / "dl-bucket" / "tuning" / snapshot.id / "train.jsonl"
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == (
        agent.provenance["training_data_sha256"])
    assert not vertex.objects  # nothing went to "Cloud Storage"


@pytest.mark.parametrize("outcome", ["FAILED", "CANCELLED", "EXPIRED"])
def test_a_job_that_does_not_succeed_is_a_trainer_error_with_its_message(
    vertex: GeminiStandIn, snapshot: Snapshot, tmp_path: Path, outcome: str,
) -> None:
    vertex.tuning = TuningScript(polls=1, outcome=outcome, error=f"quota gone ({outcome})")
    with pytest.raises(TrainerError, match=rf"ended JOB_STATE_{outcome}: quota gone \({outcome}"):
        tuner(upload_dir=str(tmp_path / "bucket")).train(snapshot, None, {})


def test_a_job_past_max_wait_is_cancelled(
    vertex: GeminiStandIn, snapshot: Snapshot, tmp_path: Path,
) -> None:
    vertex.tuning = TuningScript(polls=10_000)
    trainer = tuner(upload_dir=str(tmp_path / "bucket"), max_wait_s=0.05,
                    poll_initial_s=0.01, poll_max_s=0.01)
    with pytest.raises(TrainerError, match=r"still JOB_STATE_RUNNING.*cancelled it"):
        trainer.train(snapshot, None, {})
    (job,) = vertex.jobs.values()
    assert job["state"] == "JOB_STATE_CANCELLED"
    assert f"POST /v1beta1/{job['name']}:cancel" in vertex.paths()


def test_a_rejected_job_start_is_a_trainer_error(
    vertex: GeminiStandIn, snapshot: Snapshot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "someone-elses-project")  # the stand-in: 403
    with pytest.raises(TrainerError, match=r"could not start tuning gemini-2\.5-flash: HTTP 403"):
        tuner(upload_dir=str(tmp_path / "bucket")).train(snapshot, None, {})


def test_bad_params_and_settings_are_refused(snapshot: Snapshot) -> None:
    with pytest.raises(TrainerError, match="epochs"):
        tuner().train(snapshot, None, {"epochs": 3})
    with pytest.raises(TrainerError, match=r"feature_names not in the snapshot: \['z'\]"):
        tuner().train(snapshot, None, {"feature_names": ["x", "z"]})
    with pytest.raises(TrainerError, match=r"Gemini agent.*timeout_s"):
        tuner(agent_options={"timeout_s": -1}).train(snapshot, None, {})
    with pytest.raises(ValueError, match="bucket_uri"):
        tuner(bucket_uri="s3://elsewhere")
    with pytest.raises(ValueError, match="k_per_class"):
        GeminiFewShotTrainer(model="gemini-2.5-flash", k_per_class=0)


# ---------------------------------------------------------------------------- few-shot
def test_few_shot_takes_the_most_recent_rows_of_each_class(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, standin: GeminiStandIn, snapshot: Snapshot,
) -> None:
    use_gemini_api(monkeypatch, tmp_path, standin)
    trainer = GeminiFewShotTrainer(model="gemini-2.5-flash", k_per_class=3,
                                   agent_options={"batch_size": 8})
    agent = trainer.train(snapshot, None, {})
    rows = sorted(train_rows(snapshot), key=lambda r: r["at"], reverse=True)
    wanted = [{"features": {k: r[k] for k in FEATURES}, "label": label}
              for label in ("high", "low") for r in [r for r in rows if r["label"] == label][:3]]
    assert agent.few_shot == wanted
    assert agent.labels == ["high", "low"] and agent.batch_size == 8
    assert agent.provenance["examples"] == 6
    assert accuracy(agent, snapshot) == 1.0
    assert len(standin.generate_calls()) == 3  # 20 holdout rows, 8 per call

    assert trainer.train(snapshot, None, {"k_per_class": 1}).few_shot == [wanted[0], wanted[3]]


def test_few_shot_keeps_the_parent_instruction_unless_given_one(snapshot: Snapshot) -> None:
    parent = GeminiAgent(model="gemini-2.5-flash", labels=["high", "low"],
                         system_instruction="Decide whether x is high.")
    trainer = GeminiFewShotTrainer(model="gemini-2.5-flash")
    assert trainer.train(snapshot, parent, {}).system_instruction == "Decide whether x is high."
    assert trainer.train(snapshot, None, {}).system_instruction is None
    own = trainer.train(snapshot, parent, {"system_instruction": "Mine."})
    assert own.system_instruction == "Mine."


@pytest.mark.parametrize(("path", "kwargs"), [
    ("driftloop.training.gemini:GeminiTuningTrainer",
     {"base_model": "gemini-2.5-flash", "bucket_uri": "gs://b/p", "epoch_count": 3,
      "agent_options": {"temperature": 0.0}}),
    ("driftloop.training.gemini:GeminiFewShotTrainer",
     {"model": "gemini-2.5-flash", "k_per_class": 4, "feature_names": ["x"]}),
])
def test_trainers_are_built_from_an_import_path_and_json(path: str, kwargs: dict[str, Any]) -> None:
    module, name = path.split(":")
    trainer = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert isinstance(trainer, Trainer)
