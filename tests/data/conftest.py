"""Fixtures of the data tests: a prediction log on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from driftloop.data.predictions import PredictionLog
from driftloop.db import create_engine


@pytest.fixture
def log(db_url: str) -> Iterator[PredictionLog]:
    engine = create_engine(db_url)
    yield PredictionLog(engine)
    engine.dispose()
