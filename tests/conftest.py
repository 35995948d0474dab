"""Fixtures shared across the suite: a real database on each backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.served_model import served_settings_in

from driftloop.config import Settings

#: The PostgreSQL server the suite uses (scripts/services.sh starts it when it is down).
POSTGRES_DSN = os.environ.get("DRIFTLOOP_TEST_POSTGRES",
                              "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def served_settings(tmp_path: Path) -> Settings:
    """A registry in ``tmp_path`` whose champion (v1) is a real scikit-learn pipeline
    trained on a snapshot of the bundled breast-cancer data."""
    return served_settings_in(tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL on each backend: a fresh SQLite file, or a fresh PostgreSQL schema
    (dropped afterwards) selected through the connection's search_path."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'driftloop.db'}"
        return
    schema = f"dl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    host = POSTGRES_DSN.removeprefix("postgresql://")
    yield f"postgresql+psycopg://{host}?options=-csearch_path%3D{schema}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
