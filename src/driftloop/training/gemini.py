"""Trainers whose models are :class:`~driftloop.models.gemini.GeminiAgent` s.

* :class:`GeminiTuningTrainer`: supervised tuning on Vertex AI. The snapshot's train rows
  become a JSONL dataset in Vertex's Gemini format (one ``systemInstruction`` plus a user
  turn and a model turn per row), uploaded to Cloud Storage; a tuning job is started and
  polled until it ends; the agent then calls the tuned endpoint, one row per call, with
  exactly the instruction, user text and answer format it was tuned on.
* :class:`GeminiFewShotTrainer`: no job at all; "training" picks the most recent
  ``k_per_class`` train rows of every class as few-shot examples.

Both are frozen dataclasses of JSON values, so the orchestrator can build them from JSON
keyword arguments (``module:Class`` plus ``{...}``); ``train``'s ``params`` override any
of those fields for one run (an unknown name is a :class:`TrainerError`). Features are
the snapshot's columns except its timestamp, entity and label columns, unless
``feature_names`` says otherwise. Only classification is trained: the label column holds
the classes. Progress goes to the ``driftloop.training`` logger.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import quote

import httpx
import pandas as pd

from driftloop.data.snapshots import Snapshot
from driftloop.models.gemini import (
    GeminiAgent,
    Label,
    classify_failure,
    google_credentials,
    json_value,
    make_client,
)
from driftloop.training.base import TrainerError

if TYPE_CHECKING:
    from google.genai import Client, types

log = logging.getLogger("driftloop.training")

SUCCEEDED: Final = "JOB_STATE_SUCCEEDED"
#: States a job never leaves: every one but SUCCEEDED is a failed training.
TERMINAL_STATES: Final = frozenset({SUCCEEDED, "JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
                                    "JOB_STATE_EXPIRED", "JOB_STATE_PARTIALLY_SUCCEEDED"})
STORAGE_SCOPE: Final = "https://www.googleapis.com/auth/devstorage.read_write"
GCS_ENDPOINT: Final = "https://storage.googleapis.com"


# ---------------------------------------------------------------------------- uploads
class Uploader(Protocol):
    """Puts the tuning dataset where the tuning job reads it."""

    def upload(self, path: Path, uri: str) -> str:
        """Store the file ``path`` as ``uri`` (``gs://bucket/object``); the uri to tune on."""


def parse_gs_uri(uri: str) -> tuple[str, str]:
    """``(bucket, object name)`` of ``gs://bucket/object``."""
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    if not uri.startswith("gs://") or not bucket or not name:
        raise ValueError(f"not a gs://bucket/object uri: {uri!r}")
    return bucket, name


@dataclass(frozen=True)
class LocalUploader:
    """Copies the file to ``directory/<bucket>/<object>`` and answers the ``gs://`` uri
    unchanged: a dry run of the upload, for tests and for inspecting the dataset."""

    directory: Path

    def upload(self, path: Path, uri: str) -> str:
        bucket, name = parse_gs_uri(uri)
        target = Path(self.directory, bucket, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        return uri


@dataclass(frozen=True)
class GcsUploader:
    """Cloud Storage JSON API simple upload with an ADC access token. The file is sent in
    one request, fine for tuning datasets (Vertex caps them at a few GB, typical ones are
    megabytes); a resumable upload would only pay off for much larger files."""

    endpoint: str = GCS_ENDPOINT
    timeout_s: float = 300.0

    def upload(self, path: Path, uri: str) -> str:
        from google.auth.transport.requests import Request  # noqa: PLC0415

        bucket, name = parse_gs_uri(uri)
        credentials = google_credentials(STORAGE_SCOPE)
        credentials.refresh(Request())  # type: ignore[no-untyped-call]
        response = httpx.post(
            f"{self.endpoint.rstrip('/')}/upload/storage/v1/b/{quote(bucket, safe='')}/o",
            params={"uploadType": "media", "name": name}, content=path.read_bytes(),
            headers={"Authorization": f"Bearer {credentials.token}",
                     "Content-Type": "application/jsonl"},
            timeout=self.timeout_s)
        if response.is_error:
            raise TrainerError(f"uploading the tuning dataset to {uri} failed: HTTP "
                               f"{response.status_code}: {response.text[:300]}")
        return uri


# ---------------------------------------------------------------------------- shared
@dataclass(frozen=True, kw_only=True)
class _AgentTrainer(ABC):
    """What both trainers share: how the agent is configured and how rows are read."""

    #: The task instruction; None keeps a parent GeminiAgent's, else a generic one.
    system_instruction: str | None = None
    #: Feature columns sent to the model; None: every column but time, entity and label.
    feature_names: list[str] | None = None
    #: Further GeminiAgent settings (temperature, timeout_s, max_retries, batch_size...).
    agent_options: dict[str, Any] = field(default_factory=dict)

    def train(self, snapshot: Snapshot, parent: Any | None,
              params: Mapping[str, Any]) -> GeminiAgent:
        """The agent trained on ``snapshot``; ``params`` override fields for this run."""
        try:
            trainer = dataclasses.replace(self, **dict(params))
        except (TypeError, ValueError) as exc:
            raise TrainerError(f"params do not fit {type(self).__name__}: {exc}") from None
        return trainer.fit(snapshot, parent)

    @abstractmethod
    def fit(self, snapshot: Snapshot, parent: Any | None) -> GeminiAgent:
        """The trained agent (``train`` without the per-run overrides)."""

    def agent(self, model: str, rows: TrainRows, parent: Any | None,
              **settings: Any) -> GeminiAgent:
        """The agent for ``rows``' classes and features; explicit settings win over
        ``agent_options``."""
        instruction = self.system_instruction
        if instruction is None and isinstance(parent, GeminiAgent):
            instruction = parent.system_instruction
        try:
            return GeminiAgent(**{**self.agent_options, "model": model, "task": "classify",
                                  "labels": rows.classes, "system_instruction": instruction,
                                  "feature_names": rows.feature_names, **settings})
        except (TypeError, ValueError) as exc:
            raise TrainerError(f"cannot configure the Gemini agent: {exc}") from None

    def read(self, snapshot: Snapshot) -> TrainRows:
        return TrainRows.read(snapshot, self.feature_names)


@dataclass(frozen=True)
class TrainRows:
    """A snapshot's train rows as the agent sees them, newest last (the file's order)."""

    features: list[dict[str, Any]]
    labels: list[Label]
    times: list[pd.Timestamp]
    feature_names: list[str]
    classes: list[Label]

    @classmethod
    def read(cls, snapshot: Snapshot, feature_names: Sequence[str] | None) -> TrainRows:
        frame = pd.read_parquet(snapshot.train_path)
        columns = snapshot.manifest["columns"]
        if frame.empty:
            raise TrainerError(f"snapshot {snapshot.id} has no train rows")
        names = _feature_columns(frame, columns, feature_names)
        labels = frame[columns["label"]].tolist()
        classes = sorted(set(labels))
        if any(not isinstance(label, str | int) for label in classes):
            raise TrainerError(f"label column {columns['label']!r} must hold strings, integers "
                               f"or booleans to be classes, got {frame[columns['label']].dtype}")
        cells = frame[names].astype(object).where(frame[names].notna(), None)
        features = [{str(k): json_value(v) for k, v in record.items()}
                    for record in cells.to_dict("records")]
        return cls(features, labels, list(frame[columns["timestamp"]]), names, classes)


def _feature_columns(frame: pd.DataFrame, columns: Mapping[str, str],
                     given: Sequence[str] | None) -> list[str]:
    if given is not None:
        missing = [name for name in given if name not in frame.columns]
        if missing:
            raise TrainerError(f"feature_names not in the snapshot: {missing}")
        return list(given)
    roles = set(columns.values())
    return [str(name) for name in frame.columns if name not in roles]


def _state(job: types.TuningJob) -> str:
    state = job.state
    return str(getattr(state, "value", state) or "JOB_STATE_UNSPECIFIED")


# ---------------------------------------------------------------------------- tuning
@dataclass(frozen=True)
class GeminiTuningTrainer(_AgentTrainer):
    """Supervised tuning of ``base_model`` on Vertex AI, the dataset under ``bucket_uri``.

    Polls with exponential backoff from ``poll_initial_s`` to ``poll_max_s``; after
    ``max_wait_s`` the job is cancelled (it would otherwise run, and bill, unobserved) and
    training fails. ``upload_dir`` replaces the Cloud Storage upload by a local copy.
    """

    base_model: str
    bucket_uri: str
    epoch_count: int | None = None
    learning_rate_multiplier: float | None = None
    adapter_size: str | None = None
    display_name: str = "driftloop"
    poll_initial_s: float = 30.0
    poll_max_s: float = 300.0
    max_wait_s: float = 24 * 3600.0
    request_timeout_s: float = 60.0
    upload_dir: str | None = None
    gcs_endpoint: str = GCS_ENDPOINT

    def __post_init__(self) -> None:
        if not self.bucket_uri.startswith("gs://") or len(self.bucket_uri) <= len("gs://"):
            raise ValueError(f"bucket_uri: must be gs://bucket[/prefix], got {self.bucket_uri!r}")

    def fit(self, snapshot: Snapshot, parent: Any | None) -> GeminiAgent:
        rows = self.read(snapshot)
        # One row per call: the shape the tuned model is trained on.
        template = self.agent(self.base_model, rows, parent, batch_size=1)
        uri, digest = self.upload_dataset(template, rows, snapshot)
        from google.genai import types  # noqa: PLC0415 - google-genai is slow to import

        timeout_ms = round(self.request_timeout_s * 1000)
        client = make_client(types.HttpOptions(timeout=timeout_ms))
        job = self.wait(client, self.start(client, uri, snapshot))
        tuned = job.tuned_model
        if tuned is None or not tuned.endpoint:
            raise TrainerError(f"tuning job {job.name} succeeded but names no tuned endpoint")
        log.info("tuning job %s succeeded: endpoint %s", job.name, tuned.endpoint)
        return dataclasses.replace(template, model=tuned.endpoint, tuning_job=job.name,
                                   provenance={
                                       "trainer": f"{__name__}:{type(self).__name__}",
                                       "snapshot_id": snapshot.id,
                                       "snapshot_sha256": snapshot.sha256,
                                       "base_model": self.base_model,
                                       "tuned_model": tuned.model,
                                       "training_data_uri": uri,
                                       "training_data_sha256": digest,
                                       "examples": len(rows.labels),
                                       "hyperparameters": self.hyperparameters(),
                                   })

    def hyperparameters(self) -> dict[str, Any]:
        return {"epoch_count": self.epoch_count, "adapter_size": self.adapter_size,
                "learning_rate_multiplier": self.learning_rate_multiplier}

    def upload_dataset(self, agent: GeminiAgent, rows: TrainRows,
                       snapshot: Snapshot) -> tuple[str, str]:
        """Write the JSONL, upload it; its uri and sha256."""
        uri = f"{self.bucket_uri.rstrip('/')}/{snapshot.id}/train.jsonl"
        uploader: Uploader = (LocalUploader(Path(self.upload_dir)) if self.upload_dir
                              else GcsUploader(self.gcs_endpoint))
        with tempfile.TemporaryDirectory(prefix="driftloop-tuning-") as tmp:
            path = Path(tmp, "train.jsonl")
            path.write_text(tuning_jsonl(agent, rows), encoding="utf-8")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            uri = uploader.upload(path, uri)
        log.info("uploaded %d tuning examples to %s (sha256 %s)", len(rows.labels), uri, digest)
        return uri, digest

    def start(self, client: Client, uri: str, snapshot: Snapshot) -> types.TuningJob:
        from google.genai import types  # noqa: PLC0415

        config = types.CreateTuningJobConfig(
            tuned_model_display_name=f"{self.display_name}-{snapshot.id}"[:128],
            **{k: v for k, v in self.hyperparameters().items() if v is not None})
        try:
            job: types.TuningJob = client.tunings.tune(
                base_model=self.base_model, training_dataset=types.TuningDataset(gcs_uri=uri),
                config=config)
        except Exception as exc:
            failure = classify_failure(exc)
            if failure is None:
                raise
            raise TrainerError(f"could not start tuning {self.base_model}: "
                               f"{failure.description}") from exc
        log.info("started tuning job %s on %s", job.name, uri)
        return job

    def wait(self, client: Client, job: types.TuningJob) -> types.TuningJob:
        """Poll ``job`` until it ends; it, when it succeeded, else :class:`TrainerError`."""
        started = time.monotonic()
        delay = self.poll_initial_s
        while (state := _state(job)) not in TERMINAL_STATES:
            elapsed = time.monotonic() - started
            if elapsed + delay > self.max_wait_s:
                _cancel(client, str(job.name))
                raise TrainerError(f"tuning job {job.name} was still {state} after "
                                   f"{elapsed:.0f} s (max_wait_s {self.max_wait_s}); "
                                   "cancelled it")
            log.info("tuning job %s is %s after %.0f s; next check in %.1f s", job.name,
                     state, elapsed, delay)
            time.sleep(delay)
            delay = min(delay * 2, self.poll_max_s)
            job = _poll(client, str(job.name)) or job
        if state != SUCCEEDED:
            message = job.error.message if job.error and job.error.message else "no message"
            raise TrainerError(f"tuning job {job.name} ended {state}: {message}")
        return job


def tuning_jsonl(agent: GeminiAgent, rows: TrainRows) -> str:
    """Vertex's supervised-tuning JSONL: per row the agent's system instruction, the user
    text it sends for that row and the answer it expects, so serving asks exactly what
    tuning taught."""
    instruction = {"role": "system", "parts": [{"text": agent.instruction()}]}
    lines = []
    for features, label in zip(rows.features, rows.labels, strict=True):
        contents = [{"role": "user", "parts": [{"text": agent.user_text([features])}]},
                    {"role": "model", "parts": [{"text": agent.answer_text([label])}]}]
        lines.append(json.dumps({"systemInstruction": instruction, "contents": contents},
                                ensure_ascii=False, allow_nan=False))
    return "\n".join(lines) + "\n"


def _poll(client: Client, name: str) -> types.TuningJob | None:
    """The job now; None after a transient error (the next poll tries again)."""
    try:
        return client.tunings.get(name=name)
    except Exception as exc:
        failure = classify_failure(exc)
        if failure is None:
            raise
        if not failure.retryable:
            raise TrainerError(f"cannot read tuning job {name}: {failure.description}") from exc
        log.warning("reading tuning job %s failed (%s); trying again at the next check", name,
                    failure.description)
        return None


def _cancel(client: Client, name: str) -> None:
    """Best effort: the caller is failing anyway, so a failed cancel is logged, not raised."""
    try:
        client.tunings.cancel(name=name)
    except Exception:
        log.warning("could not cancel tuning job %s; cancel it by hand", name, exc_info=True)


# ---------------------------------------------------------------------------- few-shot
@dataclass(frozen=True)
class GeminiFewShotTrainer(_AgentTrainer):
    """Few-shot examples for ``model``: the ``k_per_class`` most recent train rows of every
    class, by the snapshot's time column, grouped by class, newest first in each."""

    model: str
    k_per_class: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.k_per_class, bool) or not isinstance(self.k_per_class, int) or (
                self.k_per_class < 1):
            raise ValueError(f"k_per_class: must be an integer >= 1, got {self.k_per_class!r}")

    def fit(self, snapshot: Snapshot, parent: Any | None) -> GeminiAgent:
        rows = self.read(snapshot)
        newest_first = sorted(range(len(rows.labels)), key=rows.times.__getitem__,
                              reverse=True)  # stable: rows at the same time keep file order
        picked: dict[Label, list[int]] = {label: [] for label in rows.classes}
        for i in newest_first:
            chosen = picked[rows.labels[i]]
            if len(chosen) < self.k_per_class:
                chosen.append(i)
        few_shot = [{"features": rows.features[i], "label": label}
                    for label, indices in picked.items() for i in indices]
        log.info("picked %d few-shot examples (%d classes, up to %d each) from snapshot %s",
                 len(few_shot), len(rows.classes), self.k_per_class, snapshot.id)
        return self.agent(self.model, rows, parent, few_shot=few_shot, provenance={
            "trainer": f"{__name__}:{type(self).__name__}",
            "snapshot_id": snapshot.id,
            "snapshot_sha256": snapshot.sha256,
            "k_per_class": self.k_per_class,
            "examples": len(few_shot),
        })
