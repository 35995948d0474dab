"""The schema and engine factory: readers never block writers on SQLite; schema creation
is safe from several processes at once (see tests/registry/test_processes.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import sqlalchemy as sa

from driftloop import db


def test_an_open_read_does_not_block_a_write_on_sqlite(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with db.transaction(engine) as conn:
        conn.execute(sa.insert(db.models).values(name="m", next_version=1, generation=0))
    written = threading.Event()

    def write() -> None:
        with db.transaction(engine) as conn:
            conn.execute(sa.update(db.models).values(generation=1))
        written.set()

    with engine.connect() as reader:
        assert reader.execute(sa.select(db.models.c.generation)).scalar_one() == 0
        start = time.monotonic()
        thread = threading.Thread(target=write)
        thread.start()
        assert written.wait(5.0), "the writer waited for the open read"
        assert time.monotonic() - start < 5.0
        # The reader's transaction still sees its snapshot.
        assert reader.execute(sa.select(db.models.c.generation)).scalar_one() == 0
    thread.join()
    with engine.connect() as conn:
        assert conn.execute(sa.select(db.models.c.generation)).scalar_one() == 1


def test_a_failed_transaction_writes_nothing(db_url: str) -> None:
    engine = db.create_engine(db_url)
    try:
        with db.transaction(engine) as conn:
            conn.execute(sa.insert(db.models).values(name="m", next_version=1, generation=0))
            raise RuntimeError("crash")
    except RuntimeError:
        pass
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.models)).scalar_one() == 0
