"""The prediction log: every served prediction, and the label that arrives for it later.

The server appends one :class:`PredictionRecord` per request (usually through a
:class:`~driftloop.data.writer.BatchingWriter`, so a request never waits on the
database); ``POST /feedback``
attaches a label with :meth:`PredictionLog.feedback`; retraining reads the labelled rows
as a DataFrame with :meth:`PredictionLog.labelled`; :meth:`PredictionLog.prune` enforces
retention. Everything runs on both backends of :mod:`driftloop.db`.

Decisions that callers can rely on:

- **Timestamps are timezone-aware and stored as UTC.** A naive datetime is rejected with
  :class:`PredictionInputError` naming the field: replicas in different zones would
  otherwise write ambiguous times, and a silent guess is worse than a loud error. Every
  datetime read back is aware UTC.
- **Values are plain JSON.** numpy scalars and arrays become Python numbers and lists.
  NaN (and ``pandas.NA``) becomes ``null``, because NaN is how pandas and numpy spell a
  missing value and a served request with a missing feature must still be logged; it
  comes back as NaN/None in :meth:`~PredictionLog.labelled`. ±inf is a real value that
  JSON cannot hold, so it is rejected with an error naming the feature
  (``features.<name>``) rather than being silently changed. Any other non-JSON type
  (datetime, Decimal, …) is rejected too.
- **A label is never null**: an unlabelled prediction is one whose ``label`` column is
  SQL NULL, so a null label would be indistinguishable from "no label yet".
- **Feature names must not shadow the metadata columns** of :meth:`~PredictionLog.labelled`
  (:data:`METADATA_COLUMNS`); such a record is refused at append time, when the model's
  schema is being wired up, rather than when a retraining run finds the collision.

A runnable example (in-memory SQLite):

>>> from datetime import UTC, datetime
>>> from driftloop.db import create_engine
>>> log = PredictionLog(create_engine("sqlite://"))
>>> at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
>>> log.append([PredictionRecord("r1", at, "churn", 3, "champion", {"age": 41}, 0.82)])
1
>>> log.feedback("r1", 1).previous_label is None
True
>>> log.labelled()[["request_id", "age", "output", "label"]].to_dict("records")
[{'request_id': 'r1', 'age': 41, 'output': 0.82, 'label': 1}]
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pydantic_core
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from driftloop import db
from driftloop.db import predictions as _table
from driftloop.errors import ConflictError, DriftloopError, InputError, NotFoundError

logger = logging.getLogger(__name__)

#: The non-feature columns of :meth:`PredictionLog.labelled`, in order; feature names
#: may not use them.
METADATA_COLUMNS: tuple[str, ...] = (
    "request_id",
    "ts",
    "model_name",
    "model_version",
    "slot",
    "output",
    "shadow",
    "label",
    "labelled_at",
)
_RESERVED = frozenset(METADATA_COLUMNS)

# Column widths of driftloop.db.predictions, checked here because SQLite does not.
_MAX_LEN = {"request_id": 64, "model_name": 200, "slot": 16}

# Characters no backend can store: NUL (PostgreSQL text and jsonb refuse it) and lone
# UTF-16 surrogates (valid in a JSON string and a Python str, but not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

_T = TypeVar("_T")


# --------------------------------------------------------------------------- errors


class PredictionLogError(DriftloopError):
    """Base class of every error raised by the prediction log."""


class PredictionInputError(PredictionLogError, InputError):
    """A record, label or argument is invalid; ``field`` names it (``features.age``)."""

    def __init__(self, message: str, *, field: str, request_id: str | None = None) -> None:
        self.field = field
        self.request_id = request_id
        where = f"request {request_id!r}: " if request_id is not None else ""
        super().__init__(f"{where}field {field!r}: {message}")


class DuplicateRequestError(PredictionLogError, InputError):
    """A request_id is logged twice; the whole batch was refused, nothing written.

    ``already_stored`` tells the two cases apart: the id is in the database already
    (a retried request, or a write whose commit was acknowledged late), or it appears
    twice among the records being added.
    """

    def __init__(self, request_ids: Sequence[str], *, already_stored: bool) -> None:
        self.request_ids = tuple(request_ids)
        self.already_stored = already_stored
        first = self.request_ids[0] if self.request_ids else "?"
        more = f" (and {len(self.request_ids) - 1} more)" if len(self.request_ids) > 1 else ""
        why = "is already logged" if already_stored else "appears more than once"
        super().__init__(
            f"request_id {first!r}{more} {why}; nothing from this batch was written"
        )


class UnknownRequestError(PredictionLogError, NotFoundError):
    """No prediction has this request_id: it was never logged, or it has been pruned."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(
            f"no prediction with request_id {request_id!r} (never logged, or pruned)"
        )


class FeedbackConflictError(PredictionLogError, ConflictError):
    """The prediction already has a label; pass ``overwrite=True`` to replace it."""

    def __init__(self, request_id: str, label: Any, labelled_at: datetime | None) -> None:
        self.request_id = request_id
        self.label = label
        self.labelled_at = labelled_at
        when = labelled_at.isoformat() if labelled_at is not None else "?"
        super().__init__(
            f"request_id {request_id!r} is already labelled ({label!r} at {when}); "
            "pass overwrite=True to replace the label"
        )


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class PredictionRecord:
    """One served prediction, as the server logs it.

    ``shadow`` is ``{"version": int, "output": ...}`` when the request was mirrored to a
    shadow model, else None. ``output`` may be any JSON value (a score, a class, a dict).
    """

    request_id: str
    ts: datetime
    model_name: str
    model_version: int
    slot: str
    features: Mapping[str, Any]
    output: Any = None
    shadow: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class StoredPrediction(PredictionRecord):
    """A logged prediction read back, with its label (None until feedback arrives)."""

    label: Any = None
    labelled_at: datetime | None = None

    @property
    def labelled(self) -> bool:
        return self.labelled_at is not None


@dataclass(frozen=True)
class FeedbackResult:
    """What :meth:`PredictionLog.feedback` stored, and the label it replaced, if any."""

    request_id: str
    label: Any
    labelled_at: datetime
    previous_label: Any = None
    previous_labelled_at: datetime | None = None

    @property
    def overwritten(self) -> bool:
        return self.previous_labelled_at is not None


@dataclass(frozen=True)
class FeedbackBatchResult:
    """Outcome of :meth:`PredictionLog.feedback_many`, each list in input order.

    ``conflicts`` holds ids that were already labelled, including a repeat of an id that
    this same call labelled earlier.
    """

    applied: tuple[str, ...]
    unknown: tuple[str, ...]
    conflicts: tuple[str, ...]


# --------------------------------------------------------------------------- validation


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored in the log on every backend, or None if it can.

    Checked at the door (the HTTP bodies) and again here, so one such request is refused
    with a 422 instead of failing the write batch it lands in."""
    if text.isascii() and "\x00" not in text:  # two C scans: most text, no regex call
        return None
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    what = "the NUL character" if char == "\x00" else "a lone UTF-16 surrogate"
    return (f"contains {what} (U+{ord(char):04X}) at position {found.start()}, "
            "which the database cannot store")



def normalise_record(record: PredictionRecord) -> PredictionRecord:
    """A validated copy of ``record``: UTC ``ts``, plain-Python JSON values.

    Raises :class:`PredictionInputError` naming the offending field. Idempotent, so the
    :class:`BatchingWriter` can check a record when it is handed over (where the caller
    can still react) and :meth:`PredictionLog.append` can check again cheaply.
    """
    if not isinstance(record, PredictionRecord):
        raise PredictionInputError(
            f"expected a PredictionRecord, got {type(record).__name__}", field="record"
        )
    rid = _text(record.request_id, "request_id", None)
    features = record.features
    if type(features) is not dict and not isinstance(features, Mapping):
        raise PredictionInputError(
            f"expected a mapping of feature name to value, got {type(features).__name__}",
            field="features", request_id=rid,
        )
    clean_features: dict[str, Any] = {}
    for name, value in features.items():
        if not isinstance(name, str):
            raise PredictionInputError(
                f"feature names must be strings, got {name!r}", field="features", request_id=rid
            )
        _storable(name, "features", rid)
        if name in _RESERVED:
            raise PredictionInputError(
                "this name is reserved for a metadata column of PredictionLog.labelled()",
                field=f"features.{name}", request_id=rid,
            )
        clean_features[name] = (value if _plain(value)
                                else _json_value(value, f"features.{name}", rid))
    shadow = record.shadow
    if shadow is not None and type(shadow) is not dict and not isinstance(shadow, Mapping):
        raise PredictionInputError(
            f"expected a mapping or None, got {type(shadow).__name__}",
            field="shadow", request_id=rid,
        )
    return PredictionRecord(
        request_id=rid,
        ts=_utc(record.ts, "ts", rid),
        model_name=_text(record.model_name, "model_name", rid),
        model_version=_version(record.model_version, rid),
        slot=_text(record.slot, "slot", rid),
        features=clean_features,
        output=_json_value(record.output, "output", rid),
        shadow=None if shadow is None else _json_value(shadow, "shadow", rid),
    )


def _text(value: Any, field: str, rid: str | None) -> str:
    if not isinstance(value, str) or not value:
        raise PredictionInputError(f"expected a non-empty string, got {value!r}",
                                   field=field, request_id=rid)
    if len(value) > _MAX_LEN[field]:
        raise PredictionInputError(
            f"longer than {_MAX_LEN[field]} characters ({len(value)})", field=field, request_id=rid
        )
    _storable(value, field, rid)
    return str(value)


def _storable(value: str, field: str, rid: str | None) -> None:
    problem = unstorable(value)
    if problem is not None:
        raise PredictionInputError(problem, field=field, request_id=rid)


def _version(value: Any, rid: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise PredictionInputError(f"expected an integer, got {value!r}",
                                   field="model_version", request_id=rid)
    if value < 0:
        raise PredictionInputError(f"must be >= 0, got {value}",
                                   field="model_version", request_id=rid)
    return int(value)


def _utc(value: Any, field: str, rid: str | None = None) -> datetime:
    """``value`` as an aware UTC ``datetime`` (a plain one, even from a pandas Timestamp)."""
    if not isinstance(value, datetime):
        raise PredictionInputError(f"expected a datetime, got {type(value).__name__}",
                                   field=field, request_id=rid)
    if value.tzinfo is None or value.utcoffset() is None:
        raise PredictionInputError(
            "naive datetime; pass a timezone-aware one such as datetime.now(UTC)",
            field=field, request_id=rid,
        )
    u = value.astimezone(UTC)
    return datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond,
                    tzinfo=UTC)


def _plain(value: Any) -> bool:
    """Whether ``value`` is already a plain JSON value that :func:`_json_value` returns as
    it is: most served features and outputs. Checked first, so that the path a refusal
    would name is only formatted for the rest (formatting it for every nested value was
    most of validating a served record)."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is str:
        return value.isascii() and "\x00" not in value
    return kind is int or kind is bool or value is None


def _json_value(value: Any, path: str, rid: str | None) -> Any:
    """``value`` as plain JSON-compatible Python; NaN → None, ±inf and other types refused."""
    if _plain(value):  # most values
        return value
    kind = type(value)
    if kind is dict:  # before the slower ABC check below: an output or shadow answer
        return _json_object(value, path, rid)
    if kind is list:
        return _json_array(value, path, rid)
    if isinstance(value, str):
        _storable(value, path, rid)
        return str(value)  # np.str_ → str
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        if math.isinf(number):
            raise PredictionInputError(f"{number} is not valid JSON (only NaN maps to null)",
                                       field=path, request_id=rid)
        return number
    if value is pd.NA:
        return None
    if isinstance(value, Mapping):
        return _json_object(value, path, rid)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return _json_array(value, path, rid)
    raise PredictionInputError(f"{type(value).__name__} is not JSON-serialisable",
                               field=path, request_id=rid)


def _json_object(value: Mapping[Any, Any], path: str, rid: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise PredictionInputError(f"JSON object keys must be strings, got {key!r}",
                                       field=path, request_id=rid)
        _storable(key, path, rid)
        out[str(key)] = item if _plain(item) else _json_value(item, f"{path}.{key}", rid)
    return out


def _json_array(value: Sequence[Any], path: str, rid: str | None) -> list[Any]:
    return [item if _plain(item) else _json_value(item, f"{path}[{i}]", rid)
            for i, item in enumerate(value)]


def _label(label: Any, rid: str) -> Any:
    clean = _json_value(label, "label", rid)
    if clean is None:
        raise PredictionInputError(
            "a label cannot be null or NaN (a NULL label means 'not labelled yet')",
            field="label", request_id=rid,
        )
    return clean


def _request_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise PredictionInputError(f"expected a non-empty string, got {value!r}",
                                   field="request_id")
    _storable(value, "request_id", None)
    return value


def _from_db(value: datetime | None) -> datetime | None:
    return None if value is None else db.aware(value)


def _now(value: datetime | None, field: str) -> datetime:
    return datetime.now(UTC) if value is None else _utc(value, field)


#: The columns :meth:`PredictionLog.append` writes, in the order of its rows.
_APPENDED = ("request_id", "ts", "model_name", "model_version", "slot", "features",
             "output", "shadow")
#: Of those, the JSON ones: None there is SQL NULL, not JSON 'null', so "shadow IS NULL"
#: means what it says.
_NULLABLE_JSON = frozenset({"output", "shadow"})


class _RowInsert:
    """The INSERT of :meth:`PredictionLog.append`, compiled once for a dialect, with each
    column's bind processing done in one pass over the records.

    Why not ``conn.execute(insert, dicts)``: SQLAlchemy then runs every column's bind
    processor per row through its generic machinery, ``json.dumps`` three times a row
    included; that was over half of the prediction writer's CPU in a serving profile
    (issue 14). Here the statement is compiled once, the columns' own processors are
    looked up once, and a JSON column whose processor yields text is serialized by
    pydantic-core in one C call instead (about 6x cheaper than ``json.dumps``; the same
    values read back, the text only more compact). The rows then go to the driver's
    ``executemany`` as they are.
    """

    def __init__(self, dialect: sa.Dialect) -> None:
        compiled = _table.insert().compile(dialect=dialect, column_keys=list(_APPENDED))
        self.sql = str(compiled)
        #: Positional paramstyles (SQLite's qmark) take tuples in this order; named ones
        #: (psycopg's pyformat) take dicts.
        self.order: tuple[str, ...] | None = (tuple(compiled.positiontup)
                                              if compiled.positiontup else None)
        self.processors = {name: self._processor(_table.c[name].type, dialect)
                           for name in _APPENDED}

    @staticmethod
    def _processor(kind: sa.types.TypeEngine[Any], dialect: sa.Dialect
                   ) -> Callable[[Any], Any] | None:
        own = kind.dialect_impl(dialect).bind_processor(dialect)
        if isinstance(kind, sa.JSON) and own is not None and isinstance(own({"a": [1]}), str):
            return _json_text
        return own

    def rows(self, records: Sequence[PredictionRecord]) -> list[Any]:
        processors = self.processors
        out = []
        for r in records:
            values = {"request_id": r.request_id, "ts": r.ts, "model_name": r.model_name,
                      "model_version": r.model_version, "slot": r.slot,
                      "features": r.features, "output": r.output, "shadow": r.shadow}
            for name, process in processors.items():
                value = values[name]
                if process is not None and not (value is None and name in _NULLABLE_JSON):
                    values[name] = process(value)
            out.append(values if self.order is None
                       else tuple(values[name] for name in self.order))
        return out


def _json_text(value: Any) -> str:
    """A normalised record's JSON value as JSON text (plain Python values only)."""
    return pydantic_core.to_json(value).decode()


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------- the log


class PredictionLog:
    """The ``predictions`` table behind a small, transactional API.

    Thread-safe: every method borrows its own connection from the engine's pool and runs
    in its own short transaction. ``chunk_size`` bounds the ids put in one ``IN (...)``
    list and the labels applied per transaction by :meth:`feedback_many`.
    """

    def __init__(self, engine: Engine, *, chunk_size: int = 500) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self._engine = engine
        self._chunk = chunk_size
        self._insert: _RowInsert | None = None

    @property
    def engine(self) -> Engine:
        return self._engine

    # ------------------------------------------------------------------ writing

    def append(self, records: Iterable[PredictionRecord], *, normalised: bool = False) -> int:
        """Insert ``records`` with one batched INSERT in one transaction; return the count.

        Every record is validated first (:func:`normalise_record`), unless ``normalised``
        says the caller already did (the :class:`~driftloop.data.writer.BatchingWriter`
        checks each record when it is handed over). A request_id that is repeated in the
        batch or already stored raises :class:`DuplicateRequestError` naming it, and
        nothing from the batch is written.
        """
        clean = (list(records) if normalised
                 else [normalise_record(record) for record in records])
        if not clean:
            return 0
        ids = [record.request_id for record in clean]
        repeated = [rid for rid, n in _counts(ids).items() if n > 1]
        if repeated:
            raise DuplicateRequestError(repeated, already_stored=False)
        insert = self._insert
        if insert is None:
            insert = self._insert = _RowInsert(self._engine.dialect)
        rows = insert.rows(clean)
        try:
            with db.transaction(self._engine) as conn:
                conn.exec_driver_sql(insert.sql, rows)
        except IntegrityError as exc:
            # The transaction rolled back; find which ids collided, for the message.
            existing = self._existing(ids)
            if not existing:
                raise
            raise DuplicateRequestError(existing, already_stored=True) from exc
        return len(clean)

    def _existing(self, ids: Sequence[str]) -> list[str]:
        found: set[str] = set()
        with self._engine.connect() as conn:
            for chunk in _chunks(ids, self._chunk):
                query = sa.select(_table.c.request_id).where(_table.c.request_id.in_(chunk))
                found.update(conn.execute(query).scalars())
        return [rid for rid in ids if rid in found]

    def feedback(
        self, request_id: str, label: Any, *, overwrite: bool = False, at: datetime | None = None
    ) -> FeedbackResult:
        """Attach ``label`` to the prediction ``request_id``, stamped ``at`` (default now).

        Without ``overwrite`` the write never labels a row twice: of two concurrent labels
        for one request exactly one wins and the other gets :class:`FeedbackConflictError`
        (carrying the stored label). On PostgreSQL it is one statement (lock the row, update
        it if unlabelled, return what it held), so it sees one snapshot: a prediction row
        committed while the label is being written is either seen whole (and labelled) or
        not at all (:class:`UnknownRequestError`, which a caller may retry), never half (an
        UPDATE that missed the row, then a SELECT that finds it unlabelled: a false
        conflict). On SQLite the UPDATE and the SELECT run in one ``BEGIN IMMEDIATE``
        transaction, which no other writer can interleave with. With ``overwrite=True``
        the row is locked, its old label read and replaced, and the old one is returned in
        :attr:`FeedbackResult.previous_label`. An id that was never logged or has been
        pruned raises :class:`UnknownRequestError`. ``at`` may lie long after the
        prediction; it is not checked against ``ts``, since the two come from different
        clocks.
        """
        rid = _request_id(request_id)
        clean = _label(label, rid)
        when = _now(at, "at")
        with db.transaction(self._engine) as conn:
            if overwrite:
                return self._overwrite(conn, rid, clean, when)
            if self._engine.dialect.name == "postgresql":
                current = conn.execute(_label_once(rid, clean, when)).one_or_none()
                if current is not None and current.updated:
                    return FeedbackResult(rid, clean, when)
            else:
                update = (
                    sa.update(_table)
                    .where(_table.c.request_id == rid, _table.c.label.is_(None))
                    .values(label=clean, labelled_at=when)
                )
                if conn.execute(update).rowcount == 1:
                    return FeedbackResult(rid, clean, when)
                current = conn.execute(
                    sa.select(_table.c.label, _table.c.labelled_at)
                    .where(_table.c.request_id == rid)
                ).one_or_none()
        if current is None:
            raise UnknownRequestError(rid)
        raise FeedbackConflictError(rid, current.label, _from_db(current.labelled_at))

    def _overwrite(self, conn: Connection, rid: str, label: Any, when: datetime) -> FeedbackResult:
        current = conn.execute(
            sa.select(_table.c.label, _table.c.labelled_at)
            .where(_table.c.request_id == rid)
            .with_for_update()
        ).one_or_none()
        if current is None:
            raise UnknownRequestError(rid)
        conn.execute(
            sa.update(_table).where(_table.c.request_id == rid)
            .values(label=label, labelled_at=when)
        )
        return FeedbackResult(rid, label, when, current.label, _from_db(current.labelled_at))

    def feedback_many(
        self, items: Iterable[tuple[str, Any]], *, at: datetime | None = None
    ) -> FeedbackBatchResult:
        """Label many predictions (no overwriting); report what was applied, unknown, in conflict.

        Every label is validated before anything is written. Work proceeds in chunks of
        ``chunk_size``, one transaction each: the chunk's rows are locked in request_id
        order (so concurrent batches cannot deadlock), classified, and the unlabelled
        ones updated with one executemany. A chunk that fails rolls back alone; earlier
        chunks stay applied and show up as conflicts if the batch is sent again.
        """
        when = _now(at, "at")
        pairs = [(rid, _label(label, rid)) for rid, label in
                 ((_request_id(rid), label) for rid, label in items)]
        applied: list[str] = []
        unknown: list[str] = []
        conflicts: list[str] = []
        update = (
            sa.update(_table)
            .where(_table.c.request_id == sa.bindparam("b_id"), _table.c.label.is_(None))
            .values(label=sa.bindparam("b_label"), labelled_at=when)
        )
        for chunk in _chunks(pairs, self._chunk):
            with db.transaction(self._engine) as conn:
                query = (
                    sa.select(_table.c.request_id, _table.c.label.is_(None).label("open"))
                    .where(_table.c.request_id.in_(sorted({rid for rid, _ in chunk})))
                    .order_by(_table.c.request_id)
                    .with_for_update()
                )
                open_ = {row.request_id: bool(row.open) for row in conn.execute(query)}
                todo: list[dict[str, Any]] = []
                for rid, label in chunk:
                    if rid not in open_:
                        unknown.append(rid)
                    elif not open_[rid]:
                        conflicts.append(rid)
                    else:
                        open_[rid] = False  # a repeat later in this batch is a conflict
                        todo.append({"b_id": rid, "b_label": label})
                if todo:
                    result = conn.execute(update, todo)
                    if (self._engine.dialect.supports_sane_multi_rowcount
                            and result.rowcount != len(todo)):
                        raise PredictionLogError(  # cannot happen while the rows are locked
                            f"expected to label {len(todo)} rows, labelled {result.rowcount}"
                        )
            applied.extend(item["b_id"] for item in todo)
        return FeedbackBatchResult(tuple(applied), tuple(unknown), tuple(conflicts))

    # ------------------------------------------------------------------ reading

    def get(self, request_id: str) -> StoredPrediction | None:
        """The logged prediction with its label, or None if unknown (or pruned)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(_table).where(_table.c.request_id == request_id)
            ).one_or_none()
        if row is None:
            return None
        return StoredPrediction(
            request_id=row.request_id,
            ts=db.aware(row.ts),
            model_name=row.model_name,
            model_version=row.model_version,
            slot=row.slot,
            features=row.features,
            output=row.output,
            shadow=row.shadow,
            label=row.label,
            labelled_at=_from_db(row.labelled_at),
        )

    def labelled(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model_name: str | None = None,
        limit: int | None = None,
        labelled_after: tuple[datetime, str] | None = None,
    ) -> pd.DataFrame:
        """The labelled predictions as a DataFrame, ordered by ``ts`` (then request_id).

        Columns: :data:`METADATA_COLUMNS` followed by one column per feature, flattened
        from the features JSON in order of first appearance (a feature missing from a
        row is NaN/None there). ``ts`` and ``labelled_at`` are ``datetime64[…, UTC]``,
        ``model_version`` int64; feature, ``output`` and ``label`` dtypes are inferred
        by pandas. ``df.attrs["feature_columns"]`` lists the feature columns.

        ``since`` is inclusive and ``until`` exclusive, both on the prediction time
        ``ts``; ``limit`` keeps the first rows in that order (the oldest), as SQL would.

        ``labelled_after`` (a ``(labelled_at, request_id)`` pair, typically the last row of
        the previous call) reads incrementally: only rows labelled after it, ordered by
        ``(labelled_at, request_id)`` — the order the labels arrived in — so a reader that
        follows the labels never reads a row twice.
        """
        query = sa.select(
            _table.c.request_id, _table.c.ts, _table.c.model_name, _table.c.model_version,
            _table.c.slot, _table.c.features, _table.c.output, _table.c.shadow, _table.c.label,
            _table.c.labelled_at,
        ).where(_table.c.label.is_not(None))
        if since is not None:
            query = query.where(_table.c.ts >= _utc(since, "since"))
        if until is not None:
            query = query.where(_table.c.ts < _utc(until, "until"))
        if model_name is not None:
            query = query.where(_table.c.model_name == model_name)
        if labelled_after is None:
            query = query.order_by(_table.c.ts, _table.c.request_id)
        else:
            at, rid = labelled_after
            after = sa.tuple_(sa.literal(_utc(at, "labelled_after"), _table.c.labelled_at.type),
                              sa.literal(rid, _table.c.request_id.type))
            query = query.where(sa.tuple_(_table.c.labelled_at, _table.c.request_id) > after
                                ).order_by(_table.c.labelled_at, _table.c.request_id)
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be >= 0, got {limit}")
            query = query.limit(limit)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return _frame(rows)

    def answered(self, *, since: datetime, until: datetime, model_name: str
                 ) -> pd.DataFrame:
        """Every prediction of ``model_name`` made in ``[since, until)``, labelled or not:
        columns ``slot``, ``output``, ``shadow`` and ``labelled`` (bool), ordered by ``ts``.

        :meth:`labelled` cannot say which requests are still *waiting* for a label; this
        can, which is what comparing labelled shares between predicted classes needs
        (:func:`driftloop.evaluation.label_share`). Features are not read."""
        query = sa.select(
            _table.c.slot, _table.c.output, _table.c.shadow,
            _table.c.label.is_not(None).label("labelled"),
        ).where(_table.c.ts >= _utc(since, "since"), _table.c.ts < _utc(until, "until"),
                _table.c.model_name == model_name
                ).order_by(_table.c.ts, _table.c.request_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return pd.DataFrame({
            "slot": pd.Series([r.slot for r in rows], dtype=str),
            "output": pd.Series([r.output for r in rows], dtype=object),
            "shadow": pd.Series([r.shadow for r in rows], dtype=object),
            "labelled": pd.Series([bool(r.labelled) for r in rows], dtype=bool),
        })

    def count(self, labelled: bool | None = None) -> int:
        """Number of logged predictions: all (None), labelled (True) or unlabelled (False)."""
        query = sa.select(sa.func.count()).select_from(_table)
        if labelled is True:
            query = query.where(_table.c.label.is_not(None))
        elif labelled is False:
            query = query.where(_table.c.label.is_(None))
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # ------------------------------------------------------------------ retention

    def prune(
        self,
        *,
        max_age: timedelta | None = None,
        max_rows: int | None = None,
        now: datetime | None = None,
        batch_size: int = 1000,
    ) -> int:
        """Delete predictions older than ``max_age`` and/or beyond the newest ``max_rows``.

        Returns the number of rows deleted. Age is measured on ``ts`` against ``now``
        (default: the current time). ``max_rows`` keeps the newest rows by
        (``ts``, request_id); its boundary is fixed when the call starts, so rows
        appended meanwhile are never touched. Deletion runs in transactions of at most
        ``batch_size`` rows, oldest first, so a large prune never holds one long lock
        (on SQLite, the whole-database write lock) and can be interrupted safely.
        Labelled rows are pruned like any other: a label that arrives afterwards gets
        :class:`UnknownRequestError`.
        """
        if max_age is None and max_rows is None:
            raise ValueError("prune needs max_age, max_rows or both")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        deleted = 0
        if max_age is not None:
            if max_age < timedelta(0):
                raise ValueError(f"max_age must not be negative, got {max_age}")
            cutoff = _now(now, "now") - max_age
            deleted += self._delete_batches(_table.c.ts < cutoff, batch_size)
        if max_rows is not None:
            if max_rows < 0:
                raise ValueError(f"max_rows must be >= 0, got {max_rows}")
            deleted += self._prune_rows(max_rows, batch_size)
        return deleted

    def _prune_rows(self, max_rows: int, batch_size: int) -> int:
        # The newest row to delete: the one just past the max_rows newest.
        with self._engine.connect() as conn:
            boundary = conn.execute(
                sa.select(_table.c.ts, _table.c.request_id)
                .order_by(_table.c.ts.desc(), _table.c.request_id.desc())
                .offset(max_rows)
                .limit(1)
            ).one_or_none()
        if boundary is None:
            return 0
        ts, rid = db.aware(boundary.ts), boundary.request_id
        older = sa.or_(_table.c.ts < ts, sa.and_(_table.c.ts == ts, _table.c.request_id <= rid))
        return self._delete_batches(older, batch_size)

    def _delete_batches(self, condition: sa.ColumnElement[bool], batch_size: int) -> int:
        victims = (
            sa.select(_table.c.request_id)
            .where(condition)
            .order_by(_table.c.ts, _table.c.request_id)
            .limit(batch_size)
        )
        statement = sa.delete(_table).where(_table.c.request_id.in_(victims))
        total = 0
        while True:
            with db.transaction(self._engine) as conn:
                deleted = conn.execute(statement).rowcount
            total += deleted
            if deleted == 0:
                return total


def _label_once(rid: str, label: Any, when: datetime) -> sa.Select[Any]:
    """PostgreSQL: label ``rid`` if unlabelled, in one statement; one row (the label and
    time it held, and ``updated``: 1 if this statement labelled it) or none if unknown.

    The row is locked first (``FOR UPDATE``), so a concurrent labeller is waited for and its
    label is what comes back."""
    current = (
        sa.select(_table.c.request_id, _table.c.label, _table.c.labelled_at)
        .where(_table.c.request_id == rid)
        .with_for_update()
        .cte("current")
    )
    updated = (
        sa.update(_table)
        .where(_table.c.request_id == current.c.request_id, current.c.label.is_(None))
        .values(label=label, labelled_at=when)
        .returning(_table.c.request_id)
        .cte("updated")
    )
    count = sa.select(sa.func.count()).select_from(updated).scalar_subquery()
    return sa.select(current.c.label, current.c.labelled_at, count.label("updated"))


def _counts(ids: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rid in ids:
        counts[rid] = counts.get(rid, 0) + 1
    return counts


def _frame(rows: Sequence[Any]) -> pd.DataFrame:
    """The DataFrame of :meth:`PredictionLog.labelled` from its result rows."""
    meta = pd.DataFrame(
        {
            "request_id": pd.Series([r.request_id for r in rows], dtype=str),
            "ts": pd.to_datetime([db.aware(r.ts) for r in rows], utc=True),
            "model_name": pd.Series([r.model_name for r in rows], dtype=str),
            "model_version": pd.Series([r.model_version for r in rows], dtype="int64"),
            "slot": pd.Series([r.slot for r in rows], dtype=str),
            "output": pd.Series([r.output for r in rows], dtype=None if rows else object),
            "shadow": pd.Series([r.shadow for r in rows], dtype=object),
            "label": pd.Series([r.label for r in rows], dtype=None if rows else object),
            "labelled_at": pd.to_datetime([db.aware(r.labelled_at) for r in rows], utc=True),
        }
    )
    features = pd.DataFrame.from_records([r.features for r in rows], index=meta.index)
    frame = pd.concat([meta, features], axis=1)
    frame.attrs["feature_columns"] = [str(c) for c in features.columns]
    return frame
