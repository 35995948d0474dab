"""Dataset snapshots: the time split, the files, every hash, atomicity and the DB index.

Hashes are checked against independent recomputations written here with hashlib, never
against values produced by driftloop itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from driftloop import db
from driftloop.data import snapshots
from driftloop.data.snapshots import (
    Snapshot,
    SnapshotInputError,
    SnapshotIntegrityError,
    SnapshotNotFoundError,
    SnapshotStore,
)

NOW = datetime(2026, 11, 27, 5, 30, tzinfo=UTC)
START = pd.Timestamp("2026-01-01T00:00:00Z")


def labelled_rows(n: int = 60, seed: int = 7, *, time_column: str = "ts") -> pd.DataFrame:
    """Random labelled rows in shuffled time order, one minute apart, all times distinct."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "request_id": [f"req-{i:04d}" for i in range(n)],
        time_column: START + pd.to_timedelta(rng.permutation(n), unit="min"),
        "amount": rng.normal(100.0, 15.0, n),
        "country": rng.choice(["DE", "FR", "US"], n),
        "label": rng.integers(0, 2, n),
    })


def read(path: Path) -> pd.DataFrame:
    frame: pd.DataFrame = pq.read_table(path).to_pandas()
    return frame


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dvc_md5_by_hand(directory: Path, skip: frozenset[str] = frozenset()) -> str:
    """DVC's directory md5 written independently from its documented algorithm."""
    listing = []
    for folder, _dirs, names in os.walk(directory):
        for name in names:
            full = Path(folder) / name
            rel = full.relative_to(directory).as_posix()
            if rel not in skip:
                listing.append({"relpath": rel, "md5": hashlib.md5(full.read_bytes()).hexdigest()})
    listing.sort(key=lambda item: item["relpath"])
    return hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + ".dir"


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(root=tmp_path / "artifacts")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = db.create_engine(db_url)
    yield eng
    eng.dispose()


def make_writable(path: Path) -> None:
    path.chmod(0o644)


# --- the split and the files ------------------------------------------------------------


def test_holdout_is_exactly_the_newest_fraction(store: SnapshotStore) -> None:
    frame = labelled_rows(60)
    snap = store.write(frame, time_column="ts", query={"model": "fraud"}, now=NOW)
    train, holdout = read(snap.train_path), read(snap.holdout_path)

    newest = set(frame.sort_values("ts")["request_id"].iloc[-12:])
    assert set(holdout["request_id"]) == newest
    assert not set(train["request_id"]) & set(holdout["request_id"])
    assert train["ts"].max() < holdout["ts"].min()
    assert snap.manifest["rows"] == {"total": 60, "train": 48, "holdout": 12}

    both = pd.concat([train, holdout]).drop(columns="event_timestamp")
    expected = frame.sort_values("request_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(both.sort_values("request_id").reset_index(drop=True),
                                  expected, check_dtype=False)


def test_files_carry_utc_event_timestamp_and_entity(store: SnapshotStore) -> None:
    frame = labelled_rows(30)
    snap = store.write(frame, time_column="ts", now=NOW)
    for path in (snap.train_path, snap.holdout_path):
        schema = pq.read_schema(path)
        assert schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
        assert "request_id" in schema.names
        table = read(path)
        assert (table["event_timestamp"] == table["ts"]).all()
    assert sorted(p.name for p in snap.path.iterdir()) == [
        "holdout.parquet", "manifest.json", "schema.json", "train.parquet"]
    assert snap.path.parent == store.root / "datasets"
    assert snap.id.startswith("20261127T053000Z-")
    assert len(snap.id.split("-")[1]) == 8


def test_schema_json_names_columns_types_and_roles(store: SnapshotStore) -> None:
    snap = store.write(labelled_rows(20), time_column="ts", now=NOW)
    schema = json.loads(snap.schema_path.read_text())
    types = {column["name"]: column["type"] for column in schema["columns"]}
    assert types["amount"] == "double"
    assert types["label"] == "int64"
    assert types["event_timestamp"] == "timestamp[us, tz=UTC]"
    assert types["request_id"] in {"string", "large_string"}
    for path in (snap.train_path, snap.holdout_path):
        arrow = pq.read_schema(path)
        assert types == {field.name: str(field.type) for field in arrow}
    assert (schema["label"], schema["entity"], schema["timestamp"]) == (
        "label", "request_id", "event_timestamp")
    assert schema["source_timestamp"] == "ts"


def test_time_column_already_named_event_timestamp(store: SnapshotStore) -> None:
    frame = labelled_rows(20, time_column="event_timestamp")
    frame["event_timestamp"] = frame["event_timestamp"].dt.tz_convert("Europe/Berlin")
    snap = store.write(frame, now=NOW)
    train = read(snap.train_path)
    assert list(train.columns) == list(frame.columns)
    assert str(train["event_timestamp"].dt.tz) == "UTC"
    first = frame["event_timestamp"].min().tz_convert("UTC")
    assert snap.manifest["time_range"]["min"] == first.isoformat().replace("+00:00", "Z")


def test_rows_sharing_the_split_time_all_go_to_holdout(store: SnapshotStore) -> None:
    frame = labelled_rows(10)
    frame["ts"] = START.tz_localize(None) + pd.to_timedelta([0, 1, 2, 3, 4, 5, 6, 7, 7, 7],
                                                            unit="min")
    snap = store.write(frame, time_column="ts", holdout_fraction=0.2, now=NOW)
    assert snap.manifest["rows"] == {"total": 10, "train": 7, "holdout": 3}
    train, holdout = read(snap.train_path), read(snap.holdout_path)
    assert train["ts"].max() < holdout["ts"].min()
    for part in (train, holdout):  # naive input times are taken as UTC
        assert (part["event_timestamp"] == part["ts"].dt.tz_localize("UTC")).all()
    assert snap.manifest["time_range"]["split"] == "2026-01-01T00:07:00Z"
    assert snap.manifest["time_range"]["train_max"] == "2026-01-01T00:06:00Z"


def test_files_are_read_only(store: SnapshotStore) -> None:
    snap = store.write(labelled_rows(20), time_column="ts", now=NOW)
    for path in snap.path.iterdir():
        assert path.stat().st_mode & 0o777 == 0o444


# --- hashes ----------------------------------------------------------------------------


def test_manifest_hashes_match_independent_recomputation(store: SnapshotStore) -> None:
    snap = store.write(labelled_rows(40), time_column="ts", now=NOW)
    files = snap.manifest["files"]
    assert sorted(files) == ["holdout.parquet", "schema.json", "train.parquet"]
    for name, entry in files.items():
        assert entry["sha256"] == sha256_of(snap.path / name)
        assert entry["md5"] == hashlib.md5((snap.path / name).read_bytes()).hexdigest()
        assert entry["size"] == (snap.path / name).stat().st_size
    # `sha256sum holdout.parquet schema.json train.parquet | sha256sum`
    listing = "".join(f"{sha256_of(snap.path / name)}  {name}\n"
                      for name in ("holdout.parquet", "schema.json", "train.parquet"))
    assert snap.sha256 == hashlib.sha256(listing.encode()).hexdigest()
    assert "sha256sum" in snap.manifest["sha256_definition"]


def test_dvc_md5_matches_independent_recomputation(store: SnapshotStore) -> None:
    snap = store.write(labelled_rows(40), time_column="ts", now=NOW)
    assert snap.manifest["dvc"]["md5_without_manifest"] == dvc_md5_by_hand(
        snap.path, skip=frozenset({"manifest.json"}))
    assert snap.dvc_md5() == dvc_md5_by_hand(snap.path)
    assert snap.dvc_md5() != snap.manifest["dvc"]["md5_without_manifest"]


def test_dvc_listing_serialisation_by_hand(tmp_path: Path) -> None:
    """Pin the exact bytes DVC hashes: default separators, keys sorted, list by relpath."""
    (tmp_path / "b.txt").write_bytes(b"b")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_bytes(b"a")
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in [("a", b"a"), ("b", b"b")]}
    text = (f'[{{"md5": "{md5["b"]}", "relpath": "b.txt"}}, '
            f'{{"md5": "{md5["a"]}", "relpath": "sub/a.txt"}}]')
    expected = hashlib.md5(text.encode()).hexdigest() + ".dir"
    assert snapshots.dvc_directory_md5(tmp_path) == expected


# --- verify ----------------------------------------------------------------------------


def test_verify_passes_on_a_fresh_snapshot(store: SnapshotStore) -> None:
    snap = store.write(labelled_rows(20), time_column="ts", now=NOW)
    for handle in (snap, snap.id, snap.path):
        assert store.verify(handle).manifest == snap.manifest


def test_verify_names_a_file_with_one_changed_byte(store: SnapshotStore) -> None:
    snap = store.write(labelled_rows(20), time_column="ts", now=NOW)
    make_writable(snap.train_path)
    data = bytearray(snap.train_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    snap.train_path.write_bytes(bytes(data))
    with pytest.raises(SnapshotIntegrityError, match=r"train\.parquet") as caught:
        store.verify(snap.id)
    assert caught.value.file == "train.parquet"


def test_verify_names_a_deleted_file(store: SnapshotStore) -> None:
    snap = store.write(labelled_rows(20), time_column="ts", now=NOW)
    snap.holdout_path.unlink()
    with pytest.raises(SnapshotIntegrityError, match=r"holdout\.parquet") as caught:
        store.verify(snap)
    assert caught.value.file == "holdout.parquet"


def test_verify_names_an_added_file(store: SnapshotStore) -> None:
    snap = store.write(labelled_rows(20), time_column="ts", now=NOW)
    (snap.path / "notes.txt").write_text("hi")
    with pytest.raises(SnapshotIntegrityError) as caught:
        store.verify(snap)
    assert caught.value.file == "notes.txt"


def test_verify_catches_a_manifest_rewritten_to_match(store: SnapshotStore) -> None:
    snap = store.write(labelled_rows(20), time_column="ts", now=NOW)
    manifest = dict(snap.manifest)
    manifest["files"] = {**manifest["files"], "schema.json": {
        **manifest["files"]["schema.json"], "sha256": "0" * 64}}
    make_writable(snap.manifest_path)
    snap.manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(SnapshotIntegrityError) as caught:
        store.verify(snap)
    assert caught.value.file == "schema.json"


# --- atomicity -------------------------------------------------------------------------


def test_failure_midway_leaves_nothing(store: SnapshotStore,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real = pq.write_table
    calls: list[Path] = []

    def fail_on_second(table: pa.Table, where: Any, **kwargs: Any) -> None:
        calls.append(Path(where))
        if len(calls) == 2:
            Path(where).write_bytes(b"PAR1 half a file")
            raise OSError("disk full")
        real(table, where, **kwargs)

    monkeypatch.setattr(snapshots.pq, "write_table", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        store.write(labelled_rows(20), time_column="ts", now=NOW)
    assert len(calls) == 2
    assert not store.datasets_dir.exists() or list(store.datasets_dir.iterdir()) == []
    assert store.list() == []


def test_bad_input_writes_nothing(store: SnapshotStore) -> None:
    with pytest.raises(SnapshotInputError):
        store.write(labelled_rows(20), time_column="missing", now=NOW)
    assert not store.datasets_dir.exists() or list(store.datasets_dir.iterdir()) == []


# --- bad input -------------------------------------------------------------------------


def _null_times(frame: pd.DataFrame) -> pd.DataFrame:
    frame["ts"] = frame["ts"].astype("object")
    frame.loc[3, "ts"] = None
    return frame


def _epoch_times(frame: pd.DataFrame) -> pd.DataFrame:
    frame["ts"] = np.arange(len(frame))
    return frame


def _same_time(frame: pd.DataFrame) -> pd.DataFrame:
    frame["ts"] = START
    return frame


def _null_label(frame: pd.DataFrame) -> pd.DataFrame:
    frame["label"] = frame["label"].astype("float64")
    frame.loc[0, "label"] = np.nan
    return frame


def _clash(frame: pd.DataFrame) -> pd.DataFrame:
    frame["event_timestamp"] = frame["ts"]
    return frame


@pytest.mark.parametrize(("change", "kwargs", "field"), [
    (lambda f: f.drop(columns="label"), {}, "label"),
    (lambda f: f.drop(columns="request_id"), {}, "request_id"),
    (lambda f: f.iloc[:0], {}, "frame"),
    (None, {"holdout_fraction": 0}, "holdout_fraction"),
    (None, {"holdout_fraction": 1}, "holdout_fraction"),
    (None, {"holdout_fraction": 1.5}, "holdout_fraction"),
    (None, {"holdout_fraction": float("nan")}, "holdout_fraction"),
    (lambda f: f.iloc[:2], {"holdout_fraction": 0.1}, "holdout_fraction"),
    (lambda f: f.iloc[:2], {"holdout_fraction": 0.9}, "holdout_fraction"),
    (_null_times, {}, "ts"),
    (_epoch_times, {}, "ts"),
    (_same_time, {}, "ts"),
    (_null_label, {}, "label"),
    (_clash, {}, "event_timestamp"),
    (None, {"label_column": "request_id"}, "columns"),
    (None, {"query": {"when": datetime(2026, 1, 1)}}, "query"),
    (None, {"parent": "20260101T000000Z-deadbeef"}, "parent"),
    (None, {"now": datetime(2026, 1, 1)}, "now"),
])
def test_bad_input_names_the_field(store: SnapshotStore, change: Any, kwargs: dict[str, Any],
                                   field: str) -> None:
    frame = labelled_rows(20)
    if change is not None:
        frame = change(frame)
    with pytest.raises(SnapshotInputError, match=repr(field)) as caught:
        store.write(frame, **{"time_column": "ts", "now": NOW, **kwargs})
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


# --- without a database: the folder is the index ---------------------------------------


def test_folder_index_get_and_list(store: SnapshotStore) -> None:
    first = store.write(labelled_rows(20), time_column="ts", now=NOW)
    second = store.write(labelled_rows(20, seed=8), time_column="ts", parent=first,
                         now=NOW + timedelta(hours=1))
    assert [s.id for s in store.list()] == [first.id, second.id]
    assert store.get(second.id).parent_id == first.id
    with pytest.raises(SnapshotNotFoundError):
        store.get("20260101T000000Z-00000000")
    with pytest.raises(SnapshotNotFoundError):
        store.get("../elsewhere")


# --- with a database: both backends ----------------------------------------------------


def test_db_rows_get_list_and_parent(tmp_path: Path, engine: Engine) -> None:
    store = SnapshotStore(tmp_path / "artifacts", engine)
    parent = store.write(labelled_rows(20), time_column="ts", query={"since": "2026-01-01"},
                         now=NOW)
    child = store.write(labelled_rows(30, seed=9), time_column="ts", parent=parent.id,
                        now=NOW + timedelta(minutes=5))

    reopened = SnapshotStore(tmp_path / "artifacts", engine)  # a fresh process's view
    for view in (store, reopened):
        got = view.get(child.id)
        assert isinstance(got, Snapshot)
        assert got.path == child.path
        assert got.manifest == child.manifest
        assert got.parent_id == parent.id
        assert [s.id for s in view.list()] == [parent.id, child.id]
    assert store.get(parent.id).manifest["query"] == {"since": "2026-01-01"}
    assert store.verify(child.id).id == child.id

    with engine.connect() as conn:
        row = conn.execute(sa.select(db.dataset_snapshots).where(
            db.dataset_snapshots.c.id == child.id)).one()
    assert row.parent_id == parent.id
    assert row.rows == 30
    assert row.sha256 == child.sha256
    assert row.path == f"datasets/{child.id}"
    assert row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC) == NOW + timedelta(
        minutes=5)
    with pytest.raises(SnapshotNotFoundError):
        store.get("20260101T000000Z-00000000")


def test_db_unknown_parent_is_rejected(tmp_path: Path, engine: Engine) -> None:
    store = SnapshotStore(tmp_path / "artifacts", engine)
    orphan_parent = SnapshotStore(tmp_path / "artifacts").write(
        labelled_rows(20), time_column="ts", now=NOW)  # folder only, no row
    with pytest.raises(SnapshotInputError, match="'parent'"):
        store.write(labelled_rows(20), time_column="ts", parent=orphan_parent, now=NOW)


def test_db_failure_after_rename_leaves_an_orphan_folder_never_a_row(
        tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SnapshotStore(tmp_path / "artifacts", engine)

    def crash(self: SnapshotStore, snapshot: Snapshot) -> None:
        raise ConnectionError("database went away")

    monkeypatch.setattr(SnapshotStore, "_insert", crash)
    with pytest.raises(ConnectionError):
        store.write(labelled_rows(20), time_column="ts", now=NOW)
    monkeypatch.undo()
    (orphan,) = store.datasets_dir.iterdir()
    assert store.list() == []
    with pytest.raises(SnapshotIntegrityError, match="no dataset_snapshots row"):
        store.verify(orphan)
    assert SnapshotStore(store.root).verify(orphan).id == orphan.name  # the files are fine


def test_db_verify_compares_the_manifest_with_the_row(tmp_path: Path, engine: Engine) -> None:
    store = SnapshotStore(tmp_path / "artifacts", engine)
    snap = store.write(labelled_rows(20), time_column="ts", query={"a": 1}, now=NOW)
    edited = {**snap.manifest, "query": {"a": 2}}  # hashes still match the files
    make_writable(snap.manifest_path)
    snap.manifest_path.write_text(json.dumps(edited))
    with pytest.raises(SnapshotIntegrityError, match="recorded in the database") as caught:
        store.verify(snap.id)
    assert caught.value.file == "manifest.json"
