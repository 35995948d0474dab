"""Immutable dataset snapshots: the exact rows a model version was trained on.

A snapshot turns labelled rows into a training set that never changes afterwards, so a
model version can point at it by id and DVC can track the folder as it is. One snapshot
is one directory ``<root>/datasets/<id>/`` whose id is ``<UTC timestamp>-<random hex>``
(``20261127T053000Z-1a2b3c4d``: sortable by time, unique without coordination)::

    train.parquet     the older rows            } both carry ``event_timestamp`` (UTC) and
    holdout.parquet   the newest rows           } the entity column: a Feast FileSource
    schema.json       columns, Arrow types, which column is label / entity / timestamp
    manifest.json     row counts, time range, hashes, the query, the parent snapshot

The split is by time, never random: rows are sorted by the time column and the newest
``holdout_fraction`` of them form the holdout, so evaluation always looks at data from
after the training window, as it will in production. Rows that share the split
timestamp all go to the holdout, so every train row is strictly older than every holdout
row (the holdout may therefore be slightly larger than the fraction asks).

The directory is written with :func:`driftloop.fsutil.atomic_directory` (temporary
folder, fsync, one rename) and its files are made read-only: a reader sees a whole
snapshot or none. With a database the ``dataset_snapshots`` row is inserted only after
the rename succeeded, so a crash in between leaves an orphan folder, never a row that
points at a missing folder.

With a remote :class:`~driftloop.objectstore.ObjectStore` (``--artifacts s3://...``) the
finished folder is uploaded as the one object ``datasets/<id>.tar`` before the rename and
the row, and ``root`` is this host's cache: :meth:`SnapshotStore.get` downloads a
snapshot missing there, checks every hash (and the row) in a temporary folder, and only
then renames it into place, so a replica never reads an unverified snapshot.

Hashes, all recomputed by :meth:`SnapshotStore.verify`:

* ``files``: sha256 (and md5, size) of ``train.parquet``, ``holdout.parquet`` and
  ``schema.json``. ``manifest.json`` cannot list its own hash.
* ``sha256`` (:data:`SHA256_DEFINITION`): sha256 of the text that ``sha256sum`` prints
  for the three files in relpath order, i.e. ``sha256sum holdout.parquet schema.json
  train.parquet | sha256sum`` inside the snapshot directory.
* ``dvc.md5_without_manifest`` (:data:`DVC_DEFINITION`): the md5 DVC would give the
  directory if it held only the three covered files. The hash that ``dvc add`` records
  for the real directory also covers ``manifest.json``, so it cannot be stored inside
  it; :meth:`Snapshot.dvc_md5` computes it from the files on disk.

DVC's directory hash (as dvc-data computes it, ``Tree.as_bytes`` / ``Tree.digest``):
every file's md5 over its bytes, a list of ``{"md5": ..., "relpath": ...}`` sorted by
the posix relpath, serialised by ``json.dumps(list, sort_keys=True)`` with the default
separators, md5 of those UTF-8 bytes, then ``".dir"`` appended. DVC 2's
``md5-dos2unix`` would differ only for text files containing CRLF; the JSON files
written here contain no carriage return.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import driftloop
from driftloop import db
from driftloop.errors import InputError, IntegrityError, NotFoundError
from driftloop.fsutil import atomic_directory, file_digest, write_atomic
from driftloop.objectstore import (
    CorruptObjectError,
    ObjectMissingError,
    ObjectStore,
    download,
    upload,
)

if TYPE_CHECKING:
    from driftloop.registry import ModelRegistry

FORMAT = "driftloop.dataset-snapshot/1"
EVENT_TIMESTAMP = "event_timestamp"  # the column name Feast's FileSource expects by default
TRAIN = "train.parquet"
HOLDOUT = "holdout.parquet"
SCHEMA = "schema.json"
MANIFEST = "manifest.json"
#: The files whose hashes the manifest lists; the manifest itself is the fourth file.
HASHED_FILES = (HOLDOUT, SCHEMA, TRAIN)  # sorted by relpath, the order every hash uses
SNAPSHOT_FILES = frozenset((*HASHED_FILES, MANIFEST))
DATASETS_DIR = "datasets"
_READ_ONLY = 0o444

SHA256_DEFINITION = (
    "sha256 over the UTF-8 text of one line '<sha256 hex>  <relpath>\\n' (two spaces, "
    "sha256sum's format) per file in files, sorted by relpath: "
    "'sha256sum holdout.parquet schema.json train.parquet | sha256sum'"
)
DVC_DEFINITION = (
    "DVC directory md5 of the snapshot directory without manifest.json: md5 of "
    "json.dumps(sorted([{'md5': md5(file bytes), 'relpath': posix relpath}], by relpath), "
    "sort_keys=True) + '.dir'. `dvc add` of the folder also hashes manifest.json, so the "
    "value it records differs; driftloop computes that one on read (Snapshot.dvc_md5)."
)


class SnapshotInputError(InputError):
    """Bad input to :meth:`SnapshotStore.write`; ``field`` names the column or argument."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        prefix = f"{field!r}: " if field is not None else ""
        super().__init__(prefix + message)


class SnapshotIntegrityError(IntegrityError):
    """A snapshot on disk does not match what was written; ``file`` names the culprit."""

    def __init__(self, message: str, *, file: str) -> None:
        self.file = file
        super().__init__(f"{file}: {message}")


class SnapshotNotFoundError(NotFoundError):
    """No snapshot with this id in the database (or, without one, under the root)."""


@dataclass(frozen=True)
class Snapshot:
    """One written snapshot: its id, directory and manifest (``manifest.json`` parsed)."""

    id: str
    path: Path
    manifest: dict[str, Any]

    def __hash__(self) -> int:  # the manifest dict is unhashable; the id is unique
        return hash(self.id)

    @property
    def train_path(self) -> Path:
        return self.path / TRAIN

    @property
    def holdout_path(self) -> Path:
        return self.path / HOLDOUT

    @property
    def schema_path(self) -> Path:
        return self.path / SCHEMA

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def sha256(self) -> str:
        """The snapshot's content hash (:data:`SHA256_DEFINITION`)."""
        return str(self.manifest["sha256"])

    @property
    def rows(self) -> int:
        return int(self.manifest["rows"]["total"])

    @property
    def parent_id(self) -> str | None:
        parent = self.manifest["parent_id"]
        return None if parent is None else str(parent)

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.manifest["created_at"])

    def dvc_md5(self) -> str:
        """The md5 ``dvc add`` records for this directory (all four files), read from disk
        each call so it describes the files as they are now."""
        return dvc_directory_md5(self.path)


def dvc_directory_md5(directory: Path, *, exclude: Sequence[str] = ()) -> str:
    """DVC's ``md5`` of ``directory`` (``"<hex>.dir"``), optionally leaving out files by
    relpath. See the module docstring for the algorithm."""
    entries = []
    for file in directory.rglob("*"):
        relpath = file.relative_to(directory).as_posix()
        if file.is_file() and relpath not in exclude:
            entries.append({"md5": file_digest(file, "md5"), "relpath": relpath})
    entries.sort(key=lambda entry: entry["relpath"])
    listing = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(listing).hexdigest() + ".dir"


def snapshot_sha256(file_sha256: Mapping[str, str]) -> str:
    """The snapshot hash (:data:`SHA256_DEFINITION`) from each file's sha256 by relpath."""
    text = "".join(f"{file_sha256[name]}  {name}\n" for name in sorted(file_sha256))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SnapshotStore:
    """Writes, finds and verifies snapshots under ``root/datasets``.

    With an ``engine`` the ``dataset_snapshots`` table is the index (``list``/``get`` read
    it, and ``verify`` also checks the folder against its row); without one the folder is.
    The row's ``path`` is relative to ``root`` (posix), so the store can be moved or
    mounted elsewhere. With a ``remote`` object store (which needs the database as its
    index) ``root`` is the local cache of verified copies.
    """

    def __init__(self, root: Path, engine: Engine | None = None,
                 remote: ObjectStore | None = None) -> None:
        if remote is not None and engine is None:
            raise ValueError("a snapshot store in an object store needs the database as "
                             "its index: pass engine=")
        self.root = Path(root)
        self.engine = engine
        self.remote = remote

    @classmethod
    def for_registry(cls, registry: ModelRegistry) -> SnapshotStore:
        """The snapshots kept beside ``registry``'s artifacts: same database, same folder
        or object store."""
        return cls(registry.artifacts.root, engine=registry.engine,
                   remote=registry.artifacts.remote)

    @property
    def datasets_dir(self) -> Path:
        return self.root / DATASETS_DIR

    def write(
        self,
        frame: pd.DataFrame,
        *,
        time_column: str = EVENT_TIMESTAMP,
        entity_column: str = "request_id",
        label_column: str = "label",
        holdout_fraction: float = 0.2,
        query: Mapping[str, Any] | None = None,
        parent: Snapshot | str | None = None,
        now: datetime | None = None,
    ) -> Snapshot:
        """Split ``frame`` by time, write the snapshot directory atomically, then record it.

        ``query`` is whatever selected the rows (stored verbatim; must be JSON). ``parent``
        is the snapshot this one extends or replaces. Naive timestamps in ``time_column``
        are taken as UTC (SQLite returns UTC datetimes without a zone).
        """
        created = _created_at(now)
        parent_id = parent.id if isinstance(parent, Snapshot) else parent
        if parent_id is not None:
            self._require_parent(parent_id)
        query_json = _check_query(query)
        table, split = _prepare(frame, time_column, entity_column, label_column,
                                holdout_fraction)
        snapshot_id = f"{created.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"
        final = self.datasets_dir / snapshot_id
        with atomic_directory(final) as tmp:
            pq.write_table(table.slice(0, split.n_train), tmp / TRAIN)
            pq.write_table(table.slice(split.n_train), tmp / HOLDOUT)
            write_atomic(tmp / SCHEMA, _json_bytes(_schema(table.schema, time_column,
                                                           entity_column, label_column)))
            manifest = _manifest(
                tmp, snapshot_id=snapshot_id, created=created, parent_id=parent_id,
                query=query_json, holdout_fraction=holdout_fraction, split=split,
                time_column=time_column, entity_column=entity_column,
                label_column=label_column,
            )
            write_atomic(tmp / MANIFEST, _json_bytes(manifest))
            for name in SNAPSHOT_FILES:
                (tmp / name).chmod(_READ_ONLY)
            if self.remote is not None:  # fails the write (no row) when the upload fails
                upload(self.remote, _object_key(snapshot_id), tmp)
        snapshot = Snapshot(snapshot_id, final, manifest)
        if self.engine is not None:  # only now: a row never points at a missing folder
            self._insert(snapshot)
        return snapshot

    def get(self, snapshot_id: str) -> Snapshot:
        """The snapshot with this id: from the database row, else from its folder."""
        if self.engine is None:
            path = self.datasets_dir / snapshot_id
            if _not_an_id(snapshot_id) or not (path / MANIFEST).is_file():
                raise SnapshotNotFoundError(f"no snapshot {snapshot_id!r} under {self.root}")
            return _read_folder(path)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(db.dataset_snapshots).where(
                db.dataset_snapshots.c.id == snapshot_id)).one_or_none()
        if row is None:
            raise SnapshotNotFoundError(f"no snapshot {snapshot_id!r} in dataset_snapshots")
        snapshot = Snapshot(row.id, self.root / row.path, dict(row.manifest))
        if self.remote is not None and not snapshot.path.is_dir():
            self._fetch(snapshot)
        return snapshot

    def _fetch(self, snapshot: Snapshot) -> None:
        """Download the snapshot's object, check all its hashes against the row's manifest
        in a temporary folder, then rename it into the cache."""
        assert self.remote is not None

        def check(folder: Path) -> None:
            present = {p.relative_to(folder).as_posix() for p in folder.rglob("*")
                       if p.is_file()}
            if present != SNAPSHOT_FILES:
                raise SnapshotIntegrityError(f"object holds {sorted(present)}, not "
                                             f"{sorted(SNAPSHOT_FILES)}", file=where)
            manifest = json.loads((folder / MANIFEST).read_bytes())
            if manifest != snapshot.manifest:
                raise SnapshotIntegrityError("differs from the manifest recorded in the "
                                             "database", file=MANIFEST)
            _check_files(folder, manifest)

        where = f"{self.remote.url}/{_object_key(snapshot.id)}"
        try:
            download(self.remote, _object_key(snapshot.id), snapshot.path, check)
        except ObjectMissingError:
            raise SnapshotIntegrityError("snapshot object is missing", file=where) from None
        except (CorruptObjectError, ValueError) as exc:
            raise SnapshotIntegrityError(f"unreadable: {exc}", file=where) from exc

    def orphan_objects(self, older_than: float) -> list[str]:
        """Snapshot objects no ``dataset_snapshots`` row lists, older than ``older_than``
        seconds (a write killed between its upload and its row): safe to delete."""
        if self.remote is None:
            return []
        assert self.engine is not None
        with self.engine.connect() as conn:
            ids = set(conn.execute(sa.select(db.dataset_snapshots.c.id)).scalars())
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        return [item.key for item in self.remote.list(f"{DATASETS_DIR}/")
                if item.key.removeprefix(f"{DATASETS_DIR}/").removesuffix(".tar") not in ids
                and item.last_modified < cutoff]

    def list(self) -> list[Snapshot]:
        """Every snapshot, oldest first (database rows, or complete folders under root)."""
        if self.engine is None:
            if not self.datasets_dir.is_dir():
                return []
            return [_read_folder(path) for path in sorted(self.datasets_dir.iterdir())
                    if not _not_an_id(path.name) and (path / MANIFEST).is_file()]
        table = db.dataset_snapshots
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.created_at, table.c.id))
            return [Snapshot(row.id, self.root / row.path, dict(row.manifest)) for row in rows]

    def verify(self, snapshot: Snapshot | str | Path) -> Snapshot:
        """Recompute every hash of a snapshot (an id, a :class:`Snapshot` or a directory)
        and return it; raise :class:`SnapshotIntegrityError` naming the first bad file.

        Checks that exactly the four files exist, each listed file's size and sha256, the
        snapshot sha256 and the DVC md5 in the manifest, and, with a database, that the
        manifest equals the one recorded in its row.
        """
        if isinstance(snapshot, Snapshot):
            path = snapshot.path
        elif isinstance(snapshot, Path):
            path = snapshot
        elif _not_an_id(snapshot):
            raise SnapshotNotFoundError(f"{snapshot!r} is not a snapshot id")
        elif self.remote is not None:  # fetched (and checked) first when not here yet
            path = self.get(snapshot).path
        else:
            path = self.datasets_dir / snapshot
        if not path.is_dir():
            raise SnapshotIntegrityError("snapshot directory is missing", file=str(path))
        present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
        missing, extra = sorted(SNAPSHOT_FILES - present), sorted(present - SNAPSHOT_FILES)
        if missing:
            raise SnapshotIntegrityError("file is missing", file=missing[0])
        if extra:  # DVC would hash it, and nothing is ever added to a snapshot
            raise SnapshotIntegrityError("unexpected file in an immutable snapshot",
                                         file=extra[0])
        manifest = _load_manifest(path)
        _check_files(path, manifest)
        if self.engine is not None:
            self._check_row(manifest)
        return Snapshot(str(manifest["id"]), path, manifest)

    def _require_parent(self, parent_id: str) -> None:
        try:
            self.get(parent_id)
        except SnapshotNotFoundError:
            raise SnapshotInputError("no such snapshot", field="parent") from None

    def _insert(self, snapshot: Snapshot) -> None:
        assert self.engine is not None
        with db.transaction(self.engine) as conn:
            conn.execute(db.dataset_snapshots.insert().values(
                id=snapshot.id,
                created_at=snapshot.created_at,
                path=snapshot.path.relative_to(self.root).as_posix(),
                rows=snapshot.rows,
                sha256=snapshot.sha256,
                parent_id=snapshot.parent_id,
                manifest=snapshot.manifest,
            ))

    def _check_row(self, manifest: dict[str, Any]) -> None:
        try:
            recorded = self.get(str(manifest["id"]))
        except SnapshotNotFoundError:
            raise SnapshotIntegrityError(
                "no dataset_snapshots row for this snapshot (orphan of an interrupted "
                "write?)", file=MANIFEST) from None
        if recorded.manifest != manifest:
            raise SnapshotIntegrityError("differs from the manifest recorded in the database",
                                         file=MANIFEST)


@dataclass(frozen=True)
class _Split:
    """Where the time-sorted rows divide, and the times that describe it."""

    n_train: int
    n_total: int
    time_min: pd.Timestamp
    time_max: pd.Timestamp
    split_time: pd.Timestamp
    train_max: pd.Timestamp


def _prepare(frame: pd.DataFrame, time_column: str, entity_column: str, label_column: str,
             holdout_fraction: float) -> tuple[pa.Table, _Split]:
    """Validate ``frame`` and return it as one Arrow table sorted by time, and the split.

    One table for both parts means both files get the same Arrow schema even when a
    column happens to be all null in one of them.
    """
    _check_fraction(holdout_fraction)
    _check_columns(frame, time_column, entity_column, label_column)
    if len(frame) == 0:
        raise SnapshotInputError("no rows to snapshot", field="frame")
    times = _utc_times(frame[time_column], time_column)
    for column in (entity_column, label_column):
        nulls = int(frame[column].isna().sum())
        if nulls:
            raise SnapshotInputError(f"{nulls} null value(s); every row needs one",
                                     field=column)
    order = np.argsort(_sort_keys(times), kind="stable")
    rows = frame.iloc[order].reset_index(drop=True)
    sorted_times = times.iloc[order].reset_index(drop=True)
    rows[EVENT_TIMESTAMP] = sorted_times
    split = _split(sorted_times, holdout_fraction, time_column)
    try:
        table = pa.Table.from_pandas(rows, preserve_index=False)
    except (ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid / ArrowTypeError too
        raise SnapshotInputError(f"cannot be stored as Parquet: {exc}", field="frame") from exc
    return table, split


def _check_fraction(holdout_fraction: float) -> None:
    if not isinstance(holdout_fraction, int | float) or not 0 < holdout_fraction < 1:
        raise SnapshotInputError(f"must lie strictly between 0 and 1, got {holdout_fraction!r}",
                                 field="holdout_fraction")


def _check_columns(frame: pd.DataFrame, time_column: str, entity_column: str,
                   label_column: str) -> None:
    roles = {"time_column": time_column, "entity_column": entity_column,
             "label_column": label_column}
    if len(set(roles.values())) != len(roles):
        raise SnapshotInputError(f"time, entity and label columns must differ, got {roles}",
                                 field="columns")
    for column in frame.columns:
        if not isinstance(column, str):
            raise SnapshotInputError("column names must be strings (Parquet needs them)",
                                     field=str(column))
    for role, column in roles.items():
        if column not in frame.columns:
            raise SnapshotInputError(f"{role} column missing from the frame (has "
                                     f"{list(frame.columns)})", field=column)
    if time_column != EVENT_TIMESTAMP and EVENT_TIMESTAMP in frame.columns:
        raise SnapshotInputError(f"would be overwritten by the UTC copy of {time_column!r}; "
                                 "rename it or pass it as time_column", field=EVENT_TIMESTAMP)


def _utc_times(column: pd.Series, name: str) -> pd.Series:
    """The time column as UTC timestamps; naive values are taken to be UTC already."""
    nulls = int(column.isna().sum())
    if nulls:
        raise SnapshotInputError(f"{nulls} null timestamp(s)", field=name)
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise SnapshotInputError(f"must hold timestamps, got {column.dtype} (epoch numbers "
                                 "are ambiguous: convert them first)", field=name)
    try:
        times = pd.to_datetime(column, utc=True)
    except (ValueError, TypeError) as exc:
        raise SnapshotInputError(f"not parseable as timestamps: {exc}", field=name) from exc
    if times.isna().any():
        raise SnapshotInputError("null timestamp(s) after parsing", field=name)
    return times


def _sort_keys(times: pd.Series) -> np.ndarray:
    """UTC times as a plain ``datetime64`` array: numpy sorts and searches it natively."""
    keys: np.ndarray = times.dt.tz_localize(None).to_numpy()
    return keys


def _split(sorted_times: pd.Series, holdout_fraction: float, time_column: str) -> _Split:
    """The newest ``round(fraction * n)`` rows, widened to every row sharing the split time."""
    n = len(sorted_times)
    wanted = round(holdout_fraction * n)
    if wanted == 0:
        raise SnapshotInputError(f"{holdout_fraction} of {n} row(s) leaves the holdout empty",
                                 field="holdout_fraction")
    if wanted == n:
        raise SnapshotInputError(f"{holdout_fraction} of {n} row(s) leaves train empty",
                                 field="holdout_fraction")
    split_time = sorted_times.iloc[n - wanted]
    keys = _sort_keys(sorted_times)
    n_train = int(np.searchsorted(keys, keys[n - wanted], side="left"))
    if n_train == 0:
        raise SnapshotInputError(f"every row has the split timestamp {split_time}; no row is "
                                 "older, so train would be empty", field=time_column)
    return _Split(n_train=n_train, n_total=n, time_min=sorted_times.iloc[0],
                  time_max=sorted_times.iloc[-1], split_time=split_time,
                  train_max=sorted_times.iloc[n_train - 1])


def _check_query(query: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if query is None:
        return None
    try:
        return dict(json.loads(json.dumps(dict(query), allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise SnapshotInputError(f"must be JSON-serialisable: {exc}", field="query") from exc


def _created_at(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise SnapshotInputError("must be timezone-aware", field="now")
    return now.astimezone(UTC)


def _schema(schema: pa.Schema, time_column: str, entity_column: str,
            label_column: str) -> dict[str, Any]:
    return {
        "columns": [{"name": field.name, "type": str(field.type), "nullable": field.nullable}
                    for field in schema],
        "label": label_column,
        "entity": entity_column,
        "timestamp": EVENT_TIMESTAMP,
        "source_timestamp": time_column,
    }


def _manifest(directory: Path, *, snapshot_id: str, created: datetime, parent_id: str | None,
              query: dict[str, Any] | None, holdout_fraction: float, split: _Split,
              time_column: str, entity_column: str, label_column: str) -> dict[str, Any]:
    files = {name: _file_entry(directory / name) for name in HASHED_FILES}
    return {
        "format": FORMAT,
        "id": snapshot_id,
        "created_at": _iso(created),
        "driftloop_version": driftloop.__version__,
        "parent_id": parent_id,
        "query": query,
        "columns": {"timestamp": EVENT_TIMESTAMP, "source_timestamp": time_column,
                    "entity": entity_column, "label": label_column},
        "holdout_fraction": holdout_fraction,
        "rows": {"total": split.n_total, "train": split.n_train,
                 "holdout": split.n_total - split.n_train},
        "time_range": {"min": _iso(split.time_min), "max": _iso(split.time_max),
                       "split": _iso(split.split_time), "train_max": _iso(split.train_max)},
        "files": files,
        "sha256": snapshot_sha256({name: entry["sha256"] for name, entry in files.items()}),
        "sha256_definition": SHA256_DEFINITION,
        "dvc": {"md5_without_manifest": dvc_directory_md5(directory, exclude=(MANIFEST,)),
                "definition": DVC_DEFINITION},
    }


def _file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": file_digest(path), "md5": file_digest(path, "md5"),
            "size": path.stat().st_size}


def _iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a ``Z`` suffix."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_bytes(document: Mapping[str, Any]) -> bytes:
    """Stable JSON: sorted keys, ASCII only, ``\\n`` line ends (no CR for DVC 2 to strip)."""
    return (json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def _object_key(snapshot_id: str) -> str:
    return f"{DATASETS_DIR}/{snapshot_id}.tar"


def _not_an_id(name: str) -> bool:
    """Temporary folders of atomic_directory start with a dot; a separator would leave
    the datasets folder."""
    return name.startswith(".") or "/" in name or os.sep in name


def _read_folder(path: Path) -> Snapshot:
    manifest = _load_manifest(path)
    return Snapshot(str(manifest["id"]), path, manifest)


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((path / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise SnapshotIntegrityError("file is missing", file=MANIFEST) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapshotIntegrityError(f"not valid JSON: {exc}", file=MANIFEST) from exc
    required = ("id", "files", "sha256", "dvc", "rows", "created_at", "parent_id")
    if not isinstance(manifest, dict) or any(key not in manifest for key in required):
        raise SnapshotIntegrityError(f"not a snapshot manifest (needs {required})",
                                     file=MANIFEST)
    if manifest["id"] != path.name:
        raise SnapshotIntegrityError(f"names snapshot {manifest['id']!r} but lies in "
                                     f"{path.name!r}", file=MANIFEST)
    return manifest


def _check_files(path: Path, manifest: dict[str, Any]) -> None:
    """Each listed file's size and sha256, then the two directory-level hashes."""
    files = manifest["files"]
    if not isinstance(files, dict) or sorted(files) != sorted(HASHED_FILES):
        raise SnapshotIntegrityError(f"'files' must list exactly {HASHED_FILES}",
                                     file=MANIFEST)
    actual = {}
    for name in HASHED_FILES:
        expected = files[name]
        if (path / name).stat().st_size != expected.get("size"):
            raise SnapshotIntegrityError(f"size {(path / name).stat().st_size} differs from "
                                         f"the manifest's {expected.get('size')}", file=name)
        actual[name] = file_digest(path / name)
        if actual[name] != expected.get("sha256"):
            raise SnapshotIntegrityError(f"sha256 {actual[name]} differs from the "
                                         f"manifest's {expected.get('sha256')}", file=name)
    if snapshot_sha256(actual) != manifest["sha256"]:
        raise SnapshotIntegrityError("snapshot sha256 does not match its files", file=MANIFEST)
    dvc = manifest["dvc"]
    if not isinstance(dvc, dict) or (
            dvc_directory_md5(path, exclude=(MANIFEST,)) != dvc.get("md5_without_manifest")):
        raise SnapshotIntegrityError("DVC md5 does not match the files", file=MANIFEST)
