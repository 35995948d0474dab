"""BatchingWriter: size and delay flushes, failures keep records, bounded buffer."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from tests.data.helpers import BASE, record, wait_for

from driftloop.data.predictions import (
    DuplicateRequestError,
    PredictionInputError,
    PredictionLog,
    PredictionRecord,
)
from driftloop.data.writer import BatchingWriter
from driftloop.db import create_engine


class FlakyLog(PredictionLog):
    """A log whose append fails the first ``failures`` times, as a dropped connection would."""

    def __init__(self, engine: sa.Engine, failures: int = 1) -> None:
        super().__init__(engine)
        self.failures_left = failures
        self.calls: list[int] = []

    def append(self, records: Any, *, normalised: bool = False) -> int:
        batch: Sequence[PredictionRecord] = list(records)
        self.calls.append(len(batch))
        if self.failures_left > 0:
            self.failures_left -= 1
            raise sa.exc.OperationalError("INSERT", {}, Exception("connection reset"))
        return super().append(batch, normalised=normalised)


def test_writer_flushes_on_size(log: PredictionLog) -> None:
    writer = BatchingWriter(log, max_batch=10, max_delay=60)
    try:
        for i in range(25):
            assert writer.add(record(i))
        wait_for(lambda: writer.written == 20)
        time.sleep(0.05)  # the 5 left over wait for max_delay (60 s): nothing more is written
        assert log.count() == 20 and writer.pending == 5
    finally:
        writer.close()
    assert log.count() == 25 and writer.written == 25 and writer.pending == 0
    with pytest.raises(RuntimeError, match="closed"):
        writer.add(record(99))


def test_writer_flushes_on_delay(log: PredictionLog) -> None:
    with BatchingWriter(log, max_batch=1000, max_delay=0.1) as writer:
        start = time.monotonic()
        for i in range(3):
            writer.add(record(i))
        # The writer updates its counters just after the commit: wait on those.
        wait_for(lambda: writer.written == 3)
        assert time.monotonic() - start >= 0.09
        assert writer.pending == 0 and log.count() == 3


def test_writer_explicit_flush_and_refused_records(log: PredictionLog) -> None:
    with BatchingWriter(log, max_batch=100, max_delay=60) as writer:
        writer.add(record(1))
        with pytest.raises(DuplicateRequestError, match="r00001"):
            writer.add(record(1))
        with pytest.raises(PredictionInputError, match=r"features\.x"):
            writer.add(PredictionRecord("bad", BASE, "m", 1, "champion", {"x": np.inf}))
        assert writer.flush() == 1 and log.count() == 1 and writer.pending == 0
        assert writer.flush() == 0


def test_writer_keeps_records_when_append_fails_once(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        flaky = FlakyLog(engine)
        with BatchingWriter(flaky, max_batch=8, max_delay=0.01, retry_delay=0.05) as writer:
            for i in range(20):
                assert writer.add(record(i))
            wait_for(lambda: writer.pending == 0)
            assert writer.failures == 1
            assert isinstance(writer.last_error, sa.exc.OperationalError)
        assert flaky.count() == 20 and writer.written == 20

        flaky.failures_left = 1
        writer = BatchingWriter(flaky, max_batch=100, max_delay=60)
        for i in range(5):
            writer.add(record(i, prefix="f"))
        with pytest.raises(sa.exc.OperationalError):
            writer.flush()
        assert writer.pending == 5 and writer.failures == 1
        writer.close()
        assert flaky.count() == 25 and writer.pending == 0
    finally:
        engine.dispose()


def test_writer_buffer_is_bounded(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        down = FlakyLog(engine, failures=10**9)  # the database is down for good
        writer = BatchingWriter(down, max_batch=4, max_buffer=6, max_delay=0, retry_delay=0.02)
        accepted = [writer.add(record(i)) for i in range(9)]
        assert accepted == [True] * 6 + [False] * 3
        assert writer.dropped == 3 and writer.pending == 6
        wait_for(lambda: writer.failures >= 2)
        assert writer.pending == 6 and down.count() == 0
        down.failures_left = 0  # it recovers
        writer.close()
        assert down.count() == 6 and writer.written == 6 and writer.dropped == 3
    finally:
        engine.dispose()


def test_writer_drops_records_already_stored(log: PredictionLog) -> None:
    log.append([record(2)])
    with BatchingWriter(log, max_batch=100, max_delay=60) as writer:
        for i in range(4):
            writer.add(record(i))
        assert writer.flush() == 3
        assert writer.duplicates == 1 and writer.pending == 0
    assert log.count() == 4


class PoisonLog(PredictionLog):
    """A log on which one request_id fails whenever it is in the batch, as a value the
    database refuses would (a DataError, not a connection problem)."""

    def __init__(self, engine: sa.Engine, poison: str) -> None:
        super().__init__(engine)
        self.poison = poison
        self.calls = 0

    def append(self, records: Any, *, normalised: bool = False) -> int:
        batch: Sequence[PredictionRecord] = list(records)
        self.calls += 1
        if any(r.request_id == self.poison for r in batch):
            raise sa.exc.DataError("INSERT", {}, Exception("invalid byte sequence"))
        return super().append(batch, normalised=normalised)


def test_a_record_that_fails_alone_is_quarantined_and_its_batch_written(
        db_url: str, tmp_path: Any) -> None:
    engine = create_engine(db_url)
    log = PoisonLog(engine, poison="r00003")
    done: list[str] = []
    writer = BatchingWriter(log, max_batch=10, max_delay=0.01, retry_delay=0.01,
                            quarantine=tmp_path / "quarantine.jsonl", on_done=done.extend)
    try:
        for i in range(8):
            writer.add(record(i))
        wait_for(lambda: writer.pending == 0)
        for i in range(8, 12):  # the log keeps going afterwards
            writer.add(record(i))
        wait_for(lambda: writer.pending == 0)
        assert log.count() == 11 and writer.written == 11
        assert writer.quarantined == 1 and writer.stuck_for == 0.0
        calls = log.calls
        time.sleep(0.1)
        assert log.calls == calls  # nothing is retried
        lines = (tmp_path / "quarantine.jsonl").read_text().splitlines()
        assert len(lines) == 1 and '"request_id": "r00003"' in lines[0]
        assert "DataError" in lines[0]
        assert sorted(done) == [f"r{i:05d}" for i in range(12)]
        assert writer.state()["quarantined"] == 1
    finally:
        writer.close()
        engine.dispose()


def test_a_database_outage_is_retried_and_reported_as_stuck(db_url: str) -> None:
    engine = create_engine(db_url)
    log = FlakyLog(engine, failures=10**6)
    writer = BatchingWriter(log, max_batch=10, max_delay=0.01, retry_delay=0.02)
    try:
        writer.add(record(1))
        wait_for(lambda: writer.failures >= 3)
        assert writer.quarantined == 0 and writer.pending == 1
        assert writer.stuck_for > 0
        state = writer.state()
        assert "OperationalError" in str(state["last_error"]) and state["pending"] == 1
        log.failures_left = 0
        wait_for(lambda: writer.pending == 0)
        assert writer.stuck_for == 0.0 and writer.state()["last_error"] is None
    finally:
        writer.close()
        engine.dispose()


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
def test_characters_no_backend_can_store_are_refused_at_add(log: PredictionLog,
                                                            bad: str) -> None:
    writer = BatchingWriter(log, max_batch=10, max_delay=0.01)
    try:
        for rec in (PredictionRecord(bad, BASE, "churn", 1, "champion", {"x": 1}),
                    PredictionRecord("ok", BASE, "churn", 1, "champion", {"x": bad}),
                    PredictionRecord("ok", BASE, "churn", 1, "champion", {bad: 1}),
                    PredictionRecord("ok", BASE, "churn", 1, "champion", {"x": 1}, {"o": bad})):
            with pytest.raises(PredictionInputError, match="cannot store"):
                writer.add(rec)
        with pytest.raises(PredictionInputError, match="cannot store"):
            log.feedback(bad, 1)
        with pytest.raises(PredictionInputError, match="cannot store"):
            log.feedback_many([(bad, 1)])
    finally:
        writer.close()
