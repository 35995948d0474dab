"""Helpers shared by the data tests: small prediction records and a polling wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from driftloop.data.predictions import PredictionRecord

BASE = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def record(i: int, *, ts: datetime | None = None, model_name: str = "churn",
           prefix: str = "r") -> PredictionRecord:
    return PredictionRecord(
        request_id=f"{prefix}{i:05d}",
        ts=ts if ts is not None else BASE + timedelta(seconds=i),
        model_name=model_name,
        model_version=3,
        slot="champion",
        features={"age": 20 + i % 50, "income": 1000.5 * i, "city": "ab"[i % 2]},
        output=round(i / 1000, 6),
        shadow={"version": 4, "output": 0.5} if i % 3 == 0 else None,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
