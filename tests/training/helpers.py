"""Helpers for tests of the retraining loop: settings, a drifting stream, logged traffic."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from driftloop.config import Settings
from driftloop.data.predictions import PredictionLog, PredictionRecord
from driftloop.demo.runner import ESTIMATOR
from driftloop.demo.stream import Stream, drifting_stream
from driftloop.models.served import served
from driftloop.registry import ModelRegistry

SHIFT = 2000


def loop_stream() -> Stream:
    return drifting_stream(SHIFT + 3000, SHIFT, seed=3)


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return datetime.now(UTC).timestamp() + self.offset


def loop_settings(tmp_path: Path, database_url: str = "", **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "model_name": "demo", "data_dir": tmp_path, "database_url": database_url,
        "trainer_options": {"estimator": ESTIMATOR}, "snapshot_rows": 800,
        "min_train_rows": 400, "min_samples": 100, "cooldown": 60.0, "watch_samples": 100,
        "train_timeout": 120.0}
    return Settings(**{**values, **overrides})


def serve_traffic(settings: Settings, stream: Stream, start: int, end: int, *,
                  shadow_version: int | None = None, label: bool = True,
                  shuffle_labels: bool = False,
                  label_if: Callable[[Any], bool] = lambda label: True) -> None:
    """Log what the champion answered for events [start, end) — and the candidate, in
    shadow — then their labels: what the server and /feedback would have written.
    ``label_if`` holds back the labels it refuses (labels still out for that outcome)."""
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    champion = registry.get_champion("demo")
    assert champion is not None
    names = list(stream.features.columns)
    rows = stream.features.iloc[start:end].to_dict(orient="records")
    outputs = served(registry.load("demo", champion.version), names).predict_batch(rows)
    shadows: list[Any] = [None] * len(rows)
    if shadow_version is not None:
        shadows = served(registry.load("demo", shadow_version), names).predict_batch(rows)
    now = datetime.now(UTC)
    ids = [f"e{start + i}-{secrets.token_hex(3)}" for i in range(len(rows))]
    log = PredictionLog(registry.engine)
    log.append(PredictionRecord(
        rid, now + timedelta(microseconds=i), "demo", champion.version, "champion", row, out,
        None if shadow_version is None else {"version": shadow_version, "output": shadow})
        for i, (rid, row, out, shadow) in enumerate(zip(ids, rows, outputs, shadows,
                                                        strict=True)))
    if label:
        labels = stream.labels.iloc[start:end].tolist()
        if shuffle_labels:  # a concept the model has never seen
            labels = [(y + 1) % 3 for y in labels]
        log.feedback_many([(rid, y) for rid, y in zip(ids, labels, strict=True)
                           if label_if(y)])
    registry.engine.dispose()
