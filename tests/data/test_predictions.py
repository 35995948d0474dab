"""The prediction log and its feedback join, on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from tests.data.helpers import BASE, record

from driftloop.data.predictions import (
    METADATA_COLUMNS,
    DuplicateRequestError,
    FeedbackConflictError,
    PredictionInputError,
    PredictionLog,
    PredictionRecord,
    UnknownRequestError,
)
from driftloop.db import create_engine


def test_append_get_round_trip(log: PredictionLog) -> None:
    paris = timezone(timedelta(hours=2))
    rec = PredictionRecord(
        "req-1", datetime(2024, 3, 1, 10, 30, 15, 123456, tzinfo=paris), "churn", 7, "shadow",
        {"age": np.int64(41), "score": np.float32(0.5), "tags": ["a", "b"],
         "nested": {"k": np.array([1, 2])}, "flag": np.bool_(True), "missing": float("nan")},
        {"class": "yes", "proba": [0.2, 0.8]},
        {"version": 8, "output": {"class": "no"}},
    )
    assert log.append([rec]) == 1
    got = log.get("req-1")
    assert got is not None
    assert got.ts == datetime(2024, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    assert got.ts.tzinfo is not None and got.ts.utcoffset() == timedelta(0)
    assert (got.model_name, got.model_version, got.slot) == ("churn", 7, "shadow")
    assert got.features == {"age": 41, "score": 0.5, "tags": ["a", "b"],
                            "nested": {"k": [1, 2]}, "flag": True, "missing": None}
    assert got.output == {"class": "yes", "proba": [0.2, 0.8]}
    assert got.shadow == {"version": 8, "output": {"class": "no"}}
    assert got.label is None and got.labelled_at is None and not got.labelled
    assert log.get("nope") is None


def test_json_values_read_back_exactly(log: PredictionLog) -> None:
    """The insert serializes JSON columns itself (not through SQLAlchemy's json.dumps):
    text beyond ASCII, integers beyond 64 bits and extreme floats read back as written."""
    features = {"city": "Zürich \u2028 😀", "big": 2**70, "tiny": 5e-324, "huge": 1e300,
                "zero": -0.0, "quote": 'a "b" \\ c', "list": [1, "x", None, True]}
    output = {"label": "ja", "p": [0.1, 0.9]}
    log.append([PredictionRecord("j1", BASE, "m", 1, "champion", features, output,
                                 {"version": 2, "output": "nein"})])
    got = log.get("j1")
    assert got is not None
    assert got.features == features and got.output == output
    assert got.shadow == {"version": 2, "output": "nein"}
    assert str(got.features["zero"]) == "-0.0"


def test_none_output_and_shadow_are_sql_null(log: PredictionLog) -> None:
    log.append([PredictionRecord("a", BASE, "m", 1, "champion", {"x": 1}, None, None)])
    got = log.get("a")
    assert got is not None and got.output is None and got.shadow is None
    with log.engine.connect() as conn:
        nulls = conn.execute(sa.text(
            "SELECT count(*) FROM predictions WHERE output IS NULL AND shadow IS NULL")).scalar()
    assert nulls == 1


def test_append_batch_of_1000_in_one_call(log: PredictionLog) -> None:
    assert log.append(record(i) for i in range(1000)) == 1000
    assert log.count() == 1000
    assert log.count(labelled=False) == 1000
    assert log.count(labelled=True) == 0
    got = log.get("r00999")
    assert got is not None and got.features["income"] == 1000.5 * 999
    assert log.append([]) == 0


def test_duplicate_in_batch_writes_nothing(log: PredictionLog) -> None:
    batch = [record(i) for i in range(10)] + [record(4)]
    with pytest.raises(DuplicateRequestError, match="r00004") as info:
        log.append(batch)
    assert info.value.request_ids == ("r00004",) and not info.value.already_stored
    assert log.count() == 0


def test_duplicate_of_stored_row_rolls_back_the_batch(log: PredictionLog) -> None:
    log.append([record(1)])
    with pytest.raises(DuplicateRequestError, match=r"r00001.*already logged") as info:
        log.append([record(2), record(1), record(3)])
    assert info.value.request_ids == ("r00001",) and info.value.already_stored
    assert log.count() == 1
    assert log.get("r00002") is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ts": datetime(2024, 1, 1)}, "ts"),  # naive
        ({"ts": "2024-01-01T00:00:00Z"}, "ts"),
        ({"features": {"x": float("inf")}}, "features.x"),
        ({"features": {"x": {"deep": [1, -np.inf]}}}, "features.x.deep[1]"),
        ({"features": {"when": datetime(2024, 1, 1, tzinfo=UTC)}}, "features.when"),
        ({"features": {"label": 1}}, "features.label"),  # reserved for labelled()
        ({"features": [1, 2]}, "features"),
        ({"output": np.float64(np.inf)}, "output"),
        ({"output": {"a": ["ok", "nul\x00"]}}, "output.a[1]"),
        ({"shadow": {"version": 2, "output": [0.5, float("inf")]}}, "shadow.output[1]"),
        ({"request_id": ""}, "request_id"),
        ({"request_id": "x" * 65}, "request_id"),
        ({"model_version": 1.5}, "model_version"),
        ({"model_version": True}, "model_version"),
        ({"slot": "a-very-long-slot-name"}, "slot"),
        ({"shadow": 0.5}, "shadow"),
    ],
)
def test_invalid_records_name_the_field(
    log: PredictionLog, change: dict[str, Any], field: str
) -> None:
    fields = {**record(1).__dict__, **change}
    with pytest.raises(PredictionInputError, match=re.escape(field)) as info:
        log.append([record(0), PredictionRecord(**fields)])
    assert info.value.field == field
    assert log.count() == 0


# --------------------------------------------------------------------------- feedback


def test_feedback_unknown_conflict_overwrite(log: PredictionLog) -> None:
    log.append([record(1)])
    with pytest.raises(UnknownRequestError, match="nope"):
        log.feedback("nope", 1)
    first = log.feedback("r00001", 1)
    assert first.label == 1 and not first.overwritten
    with pytest.raises(FeedbackConflictError, match="r00001") as info:
        log.feedback("r00001", 0)
    assert info.value.label == 1 and info.value.labelled_at == first.labelled_at
    replaced = log.feedback("r00001", {"churned": False}, overwrite=True)
    assert replaced.overwritten
    assert replaced.previous_label == 1 and replaced.previous_labelled_at == first.labelled_at
    got = log.get("r00001")
    assert got is not None and got.label == {"churned": False}
    assert got.labelled_at == replaced.labelled_at
    with pytest.raises(UnknownRequestError):
        log.feedback("nope", 1, overwrite=True)


def test_overwrite_of_unlabelled_row_reports_no_previous(log: PredictionLog) -> None:
    log.append([record(1)])
    result = log.feedback("r00001", "yes", overwrite=True)
    assert not result.overwritten and result.previous_label is None


def test_feedback_long_after_prediction(log: PredictionLog) -> None:
    log.append([record(1)])
    at = BASE + timedelta(days=90, hours=3)
    result = log.feedback("r00001", np.int64(1), at=at.astimezone(timezone(timedelta(hours=-5))))
    assert result.labelled_at == at and result.label == 1
    got = log.get("r00001")
    assert got is not None and got.labelled_at == at and got.ts == BASE + timedelta(seconds=1)


def test_feedback_rejects_bad_labels_and_times(log: PredictionLog) -> None:
    log.append([record(1)])
    for bad in (None, float("nan"), np.inf):
        with pytest.raises(PredictionInputError, match="label"):
            log.feedback("r00001", bad)
    with pytest.raises(PredictionInputError, match=r"'at'.*naive"):
        log.feedback("r00001", 1, at=datetime(2024, 1, 1))
    assert log.count(labelled=True) == 0


def test_feedback_many_mixed(log: PredictionLog) -> None:
    log.append([record(i) for i in range(5)])
    log.feedback("r00001", 0)
    result = log.feedback_many(
        [("r00000", 1), ("r00001", 1), ("ghost", 1), ("r00002", "x"), ("r00000", 0),
         ("r00004", [1, 2])]
    )
    assert result.applied == ("r00000", "r00002", "r00004")
    assert result.conflicts == ("r00001", "r00000")
    assert result.unknown == ("ghost",)
    labels = {rid: (p.label if (p := log.get(rid)) else None)
              for rid in ("r00000", "r00001", "r00002", "r00003", "r00004")}
    assert labels == {"r00000": 1, "r00001": 0, "r00002": "x", "r00003": None,
                      "r00004": [1, 2]}


def test_feedback_many_in_chunks_validates_first(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        log = PredictionLog(engine, chunk_size=7)
        log.append(record(i) for i in range(50))
        with pytest.raises(PredictionInputError, match="label"):
            log.feedback_many([("r00000", 1), ("r00001", float("inf"))])
        assert log.count(labelled=True) == 0
        items = [(f"r{i:05d}", i % 2) for i in range(0, 60, 2)]
        result = log.feedback_many(items, at=BASE + timedelta(days=1))
        assert len(result.applied) == 25 and len(result.unknown) == 5
        assert log.count(labelled=True) == 25
        assert log.labelled()["labelled_at"].eq(BASE + timedelta(days=1)).all()
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- labelled()


def test_labelled_frame(log: PredictionLog) -> None:
    records = [record(i) for i in range(20)]
    random.Random(7).shuffle(records)
    log.append(records)
    log.append([record(100, model_name="other")])
    log.feedback_many([(f"r{i:05d}", i % 2) for i in range(0, 20, 3)] + [("r00100", 1)])

    frame = log.labelled()
    assert list(frame["request_id"]) == [f"r{i:05d}" for i in (0, 3, 6, 9, 12, 15, 18, 100)]
    assert list(frame.columns) == [*METADATA_COLUMNS, "age", "income", "city"]
    assert frame.attrs["feature_columns"] == ["age", "income", "city"]
    assert frame["ts"].is_monotonic_increasing
    assert str(frame["ts"].dt.tz) == "UTC" and str(frame["labelled_at"].dt.tz) == "UTC"
    assert frame["ts"].iloc[1] == pd.Timestamp(BASE + timedelta(seconds=3))
    assert frame["model_version"].dtype == np.int64
    assert frame["age"].dtype == np.int64 and frame["income"].dtype == np.float64
    assert frame["label"].dtype == np.int64 and frame["output"].dtype == np.float64
    assert pd.api.types.is_string_dtype(frame["city"])
    assert frame.loc[frame["request_id"] == "r00009", "income"].item() == 1000.5 * 9

    window = log.labelled(since=BASE + timedelta(seconds=3), until=BASE + timedelta(seconds=12))
    assert list(window["request_id"]) == ["r00003", "r00006", "r00009"]
    assert list(log.labelled(model_name="other")["request_id"]) == ["r00100"]
    assert list(log.labelled(limit=2)["request_id"]) == ["r00000", "r00003"]


def test_labelled_after_reads_each_label_once_in_arrival_order(log: PredictionLog) -> None:
    log.append([record(i) for i in range(12)])
    arrival = [7, 2, 11, 0, 5, 9, 3]  # labels arrive out of prediction order
    start = datetime(1970, 1, 1, tzinfo=UTC)
    cursor, seen = (start, ""), []
    for batch in (arrival[:3], arrival[3:4], [], arrival[4:]):
        for i in batch:
            log.feedback(f"r{i:05d}", i % 2)
        frame = log.labelled(labelled_after=cursor)
        seen += list(frame["request_id"])
        if len(frame):
            cursor = (frame["labelled_at"].iloc[-1].to_pydatetime(), frame["request_id"].iloc[-1])
    assert seen == [f"r{i:05d}" for i in arrival]  # each once, in the order labels came


def test_answered_reads_labelled_and_unlabelled_requests(log: PredictionLog) -> None:
    log.append([record(i) for i in range(10)] + [record(100, model_name="other")])
    log.feedback_many([(f"r{i:05d}", 1) for i in (2, 5)])
    frame = log.answered(since=BASE + timedelta(seconds=1), until=BASE + timedelta(seconds=7),
                         model_name="churn")
    assert list(frame.columns) == ["slot", "output", "shadow", "labelled"]
    assert list(frame["labelled"]) == [False, True, False, False, True, False]
    assert list(frame["output"]) == [i / 1000 for i in range(1, 7)]
    assert frame["shadow"].iloc[2] == {"version": 4, "output": 0.5}
    empty = log.answered(since=BASE, until=BASE + timedelta(seconds=1), model_name="other")
    assert empty.empty and list(empty.columns) == ["slot", "output", "shadow", "labelled"]


def test_labelled_missing_features_and_empty(log: PredictionLog) -> None:
    empty = log.labelled()
    assert list(empty.columns) == list(METADATA_COLUMNS) and len(empty) == 0
    assert str(empty["ts"].dt.tz) == "UTC" and empty["model_version"].dtype == np.int64
    log.append([
        PredictionRecord("a", BASE, "m", 1, "champion", {"x": 1.5, "y": "u"}, 0),
        PredictionRecord("b", BASE + timedelta(1), "m", 1, "champion", {"x": None, "z": 2}, 1),
    ])
    log.feedback_many([("a", 0), ("b", 1)])
    frame = log.labelled()
    assert list(frame.columns[len(METADATA_COLUMNS):]) == ["x", "y", "z"]
    assert frame["x"].iloc[0] == 1.5 and pd.isna(frame["x"].iloc[1])
    assert pd.isna(frame["y"].iloc[1]) and pd.isna(frame["z"].iloc[0])
    with pytest.raises(PredictionInputError, match="since"):
        log.labelled(since=datetime(2024, 1, 1))


# --------------------------------------------------------------------------- prune


def hourly(log: PredictionLog, n: int) -> None:
    log.append(record(i, ts=BASE + timedelta(hours=i)) for i in range(n))


def test_prune_by_age(log: PredictionLog) -> None:
    hourly(log, 10)
    log.feedback("r00002", 1)
    now = BASE + timedelta(hours=10)
    assert log.prune(max_age=timedelta(hours=5, minutes=30), now=now, batch_size=2) == 5
    assert log.count() == 5 and log.get("r00004") is None and log.get("r00005") is not None
    with pytest.raises(UnknownRequestError):
        log.feedback("r00002", 0, overwrite=True)
    with pytest.raises(UnknownRequestError):
        log.feedback("r00003", 1)
    assert log.feedback_many([("r00001", 1)]).unknown == ("r00001",)
    assert log.prune(max_age=timedelta(hours=5, minutes=30), now=now) == 0
    with pytest.raises(PredictionInputError, match="now"):
        log.prune(max_age=timedelta(hours=1), now=datetime(2024, 1, 1))


def test_prune_by_rows(log: PredictionLog) -> None:
    hourly(log, 10)
    # Two rows share the boundary timestamp: the larger request_id counts as newer.
    log.append([record(50, ts=BASE + timedelta(hours=6))])
    assert log.prune(max_rows=4, batch_size=3) == 7
    assert log.count() == 4
    assert all(log.get(f"r{i:05d}") is not None for i in (7, 8, 9, 50))
    assert log.get("r00006") is None
    assert log.prune(max_rows=4) == 0
    assert log.prune(max_rows=0) == 4 and log.count() == 0


def test_prune_by_age_and_rows(log: PredictionLog) -> None:
    hourly(log, 10)
    now = BASE + timedelta(hours=10)
    assert log.prune(max_age=timedelta(hours=8, minutes=30), max_rows=5, now=now) == 5
    assert log.count() == 5 and log.get("r00005") is not None
    # Age takes r5 and r6, then the row cap takes r7 of what is left.
    assert log.prune(max_age=timedelta(hours=3, minutes=30), max_rows=2, now=now) == 3
    assert log.count() == 2 and log.get("r00008") is not None and log.get("r00007") is None
    with pytest.raises(ValueError, match="max_age"):
        log.prune()


# --------------------------------------------------------------------------- concurrency


def run_threads(n: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def body(k: int) -> None:
        try:
            barrier.wait()
            target(k)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_concurrent_labelling_applies_each_label_once(log: PredictionLog) -> None:
    ids = [f"r{i:05d}" for i in range(200)]
    log.append(record(i) for i in range(200))
    applied: dict[str, list[int]] = {rid: [] for rid in ids}
    conflicts = [0] * 8

    def label_all(k: int) -> None:
        for rid in ids:
            try:
                log.feedback(rid, k)
                applied[rid].append(k)
            except FeedbackConflictError:
                conflicts[k] += 1

    run_threads(8, label_all)
    assert all(len(winners) == 1 for winners in applied.values())
    assert sum(conflicts) == 7 * 200
    assert log.count(labelled=True) == 200
    stored = {rid: p.label for rid in ids[:20] if (p := log.get(rid))}
    assert stored == {rid: applied[rid][0] for rid in ids[:20]}


def test_concurrent_appends_of_disjoint_ids(log: PredictionLog) -> None:
    def append(k: int) -> None:
        for batch in range(5):
            log.append(record(batch * 100 + i, prefix=f"t{k}-") for i in range(50))

    run_threads(4, append)
    assert log.count() == 4 * 5 * 50


def test_a_prediction_committed_while_its_label_is_written_is_never_a_false_conflict(
        db_url: str) -> None:
    """The prediction row commits between the label's UPDATE (which missed it) and a
    follow-up SELECT (which finds it unlabelled): the client must not get a 409."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite's BEGIN IMMEDIATE keeps every other writer out of the label write")
    engine, other = create_engine(db_url), create_engine(db_url)
    log, writer_log = PredictionLog(engine), PredictionLog(other)
    fired: list[str] = []

    @sa.event.listens_for(engine, "after_cursor_execute")
    def commit_the_prediction_now(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "UPDATE predictions" in statement and not fired:
            fired.append(statement)
            writer_log.append([record(1)])  # its own connection and transaction

    try:
        try:
            result = log.feedback("r00001", 1)
        except UnknownRequestError:  # the label missed the row whole: a retry finds it
            result = log.feedback("r00001", 1)
        assert fired and result.label == 1
        stored = log.get("r00001")
        assert stored is not None and stored.label == 1
    finally:
        engine.dispose()
        other.dispose()
