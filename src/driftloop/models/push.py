"""``driftloop models push``: a user's own model file becomes a servable version.

Everything that can be wrong with the input is checked before anything is written: the
reference table can be read, the label column exists and has no gaps, the model file is of
a known kind, every feature the model expects is in the data, and the model scores the
reference's first rows. Only then is the reference written as the version's dataset
snapshot (its schema, the drift reference and the parent's training rows for later
retrains) and the model pushed, as the champion when the name has none, else as a
candidate. If the push itself fails the snapshot is removed again, so a failed push leaves
the registry as it found it.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa

from driftloop import db
from driftloop.data.snapshots import EVENT_TIMESTAMP, Snapshot, SnapshotStore
from driftloop.errors import InputError
from driftloop.models.base import ModelAdapter, ModelImporter, installed_adapters
from driftloop.models.mlflow_model import is_mlflow_source, local_model_dir, read_mlflow_model
from driftloop.models.served import plain_value, served
from driftloop.registry import ModelRegistry, ModelVersion
from driftloop.registry.artifacts import check_model_name
from driftloop.tables import TableReadError, read_table

#: Rows of the reference the model must score before anything is written.
CHECK_ROWS: Final = 8
ENTITY: Final = "request_id"
ACTOR: Final = "cli"


class PushError(InputError):
    """Bad input to a push; the message is one line naming what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass(frozen=True)
class PushRequest:
    name: str
    model: str  # a file, an MLflow model folder or a models:/ URI
    reference: Path
    label: str
    data_dir: Path
    database_url: str
    output_column: str | None = None
    ignore: tuple[str, ...] = ()  # columns that are neither features nor the label
    also_ignored: tuple[str, ...] = ()  # the same, where present (the ignore_columns setting)
    reason: str | None = None
    holdout_fraction: float = 0.2
    adapters: tuple[str, ...] = ()  # entry-point names; empty: every installed adapter


@dataclass(frozen=True)
class PushResult:
    version: ModelVersion
    features: list[str]
    unused: list[str]  # reference columns the model does not use
    snapshot: Snapshot
    source_kind: str


def push(request: PushRequest) -> PushResult:
    """Check ``request`` completely, then register the model (see the module docstring)."""
    try:
        check_model_name(request.name)
    except ValueError as exc:
        raise PushError(str(exc)) from None
    adapters = installed_adapters(request.adapters)
    frame = _reference(request)
    columns = [c for c in frame.columns if c != request.label and c not in _skipped(request)]
    model, kind = _read_model(request, adapters, frame[request.label], columns)
    features = _features(request, model, columns)
    _check_scores(request, model, frame[features])
    _check_drift_reference(request, frame[features])
    snapshot_frame = _snapshot_frame(frame, features, request.label)
    registry = ModelRegistry.open(request.database_url, artifacts=request.data_dir,
                                  adapters=adapters)
    store = SnapshotStore(request.data_dir, engine=registry.engine)
    snapshot = store.write(snapshot_frame, time_column=EVENT_TIMESTAMP, entity_column=ENTITY,
                           label_column=request.label,
                           holdout_fraction=request.holdout_fraction,
                           query={"source": "models push", "reference": str(request.reference),
                                  "rows": len(frame)})
    record = {"pushed_from": request.model, "format": kind, "label_column": request.label,
              "features": features, "trainer": _trainer_of(model),
              "ignored_columns": [c for c in _skipped(request) if c in frame.columns]}
    try:
        version = registry.push_candidate(request.name, model,
                                          dataset=(snapshot.id, snapshot.sha256), params=record,
                                          actor=ACTOR, reason=request.reason)
    except BaseException:
        _discard(store, snapshot)
        raise
    if registry.get_champion(request.name) is None:
        version = registry.promote_candidate(
            request.name, version.version, actor=ACTOR,
            reason=request.reason or "the first version of this model")
    registry.engine.dispose()
    return PushResult(version, features, [c for c in columns if c not in features], snapshot,
                      kind)


def _skipped(request: PushRequest) -> list[str]:
    """Columns that are not features: --ignore, --output-column and the log's own roles."""
    return [*request.ignore, *([request.output_column] if request.output_column else []),
            *request.also_ignored, ENTITY, EVENT_TIMESTAMP]


def _reference(request: PushRequest) -> pd.DataFrame:
    try:
        frame: pd.DataFrame = read_table(request.reference).to_pandas()
    except TableReadError as exc:
        raise PushError(f"--reference: {exc}") from None
    columns = [str(c) for c in frame.columns]
    shown = ", ".join(columns[:8]) + (f", … ({len(columns)} in all)" if len(columns) > 8
                                      else "")
    where = f"{request.reference} (columns: {shown})"
    if request.label not in frame.columns:
        raise PushError(f"--label {request.label}: not a column of {where}")
    for option, names in (("--ignore", request.ignore),
                          ("--output-column", [request.output_column] if request.output_column
                           else [])):
        for name in names:
            if name not in frame.columns:
                raise PushError(f"{option} {name}: not a column of {where}")
    if len(frame) == 0:
        raise PushError(f"--reference: {request.reference} has no rows")
    missing = int(frame[request.label].isna().sum())
    if missing:
        raise PushError(f"--label {request.label}: {missing} row(s) of {request.reference} have "
                        "no label; drop or fill them")
    return frame


def _read_model(request: PushRequest, adapters: Sequence[ModelAdapter], labels: pd.Series,
                columns: list[str]) -> tuple[Any, str]:
    values = labels.tolist()
    try:
        if is_mlflow_source(request.model):
            with local_model_dir(request.model) as directory:
                model, flavor = read_mlflow_model(directory, adapters, labels=values,
                                                  features=columns)
            return model, f"mlflow/{flavor}"
        path = Path(request.model)
        if not path.exists():
            raise PushError(f"MODEL {path}: no such file or folder")
        importers = [a for a in adapters if isinstance(a, ModelImporter)]
        for importer in importers:
            if path.is_file() and path.suffix.lower() in importer.suffixes:
                return importer.read_file(path, values, columns), str(
                    getattr(importer, "framework", "model"))
    except PushError:
        raise
    except (ValueError, OSError) as exc:  # UntrustedArtifactError is a ValueError too
        raise PushError(f"MODEL: {exc}") from None
    known = "; ".join(f"{'/'.join(i.suffixes)} ({getattr(i, 'framework', '?')})"
                      for i in importers)
    raise PushError(f"MODEL {path}: unknown model file type {path.suffix or '(none)'!r}; "
                    f"driftloop reads {known}, an MLflow model folder or a models:/ URI")


def _features(request: PushRequest, model: Any, columns: list[str]) -> list[str]:
    """The model's own features when it names them (checked against the data), else every
    column that is not the label or skipped."""
    expected = getattr(model, "feature_names_in_", None)
    if expected is None:
        return columns
    expected = [str(name) for name in expected]
    for name in expected:
        if name == request.label:
            raise PushError(f"the model expects feature {name!r}, which is the label column; "
                            "train it without the label or pass another --label")
        if name not in columns:
            where = ("is skipped (--ignore / --output-column)" if name in _skipped(request)
                     else f"is not a column of {request.reference}")
            raise PushError(f"the model expects feature {name!r}, which {where}")
    return expected


def _check_scores(request: PushRequest, model: Any, frame: pd.DataFrame) -> None:
    rows = [{str(k): plain_value(v) for k, v in row.items()}
            for row in frame.head(CHECK_ROWS).to_dict(orient="records")]
    try:
        outputs = served(model, list(frame.columns)).predict_batch(rows)
        if len(outputs) != len(rows):
            raise ValueError(f"{len(outputs)} outputs for {len(rows)} rows")
    except Exception as exc:  # whatever the model raises is the user's to see
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PushError(f"MODEL {request.model} cannot score the first rows of "
                        f"{request.reference}: {type(exc).__name__}: {detail}") from None


def _check_drift_reference(request: PushRequest, frame: pd.DataFrame) -> None:
    """The server builds its drift reference from these rows: refuse what it would fail on
    (an empty numeric column, say), now rather than when it starts."""
    from driftloop.config import Settings  # noqa: PLC0415
    from driftloop.drift import DriftInputError  # noqa: PLC0415
    from driftloop.serving.reference import reference_detector  # noqa: PLC0415 - heavy

    try:
        reference_detector(frame, None, Settings())
    except DriftInputError as exc:
        raise PushError(f"--reference {request.reference}: {exc}") from None


def _snapshot_frame(frame: pd.DataFrame, features: list[str], label: str) -> pd.DataFrame:
    """The reference as a snapshot: its features and label, an id per row, and times one
    microsecond apart ending now, so the split puts the last rows in the holdout."""
    out = frame[[*features, label]].reset_index(drop=True)
    out.insert(0, ENTITY, [f"reference-{i}" for i in range(len(out))])
    end = pd.Timestamp(datetime.now(UTC))
    out.insert(1, EVENT_TIMESTAMP, pd.date_range(end=end, periods=len(out), freq="us"))
    return out


def _trainer_of(model: Any) -> str:
    """What retrains this model by default (see driftloop.training.worker)."""
    from driftloop.training.sklearn import DEFAULT_TRAINER  # noqa: PLC0415

    return str(getattr(model, "retrainer", DEFAULT_TRAINER))


def _discard(store: SnapshotStore, snapshot: Snapshot) -> None:
    """Undo a snapshot written for a push that then failed: its row, then its folder."""
    if store.engine is not None:
        with db.transaction(store.engine) as conn:
            conn.execute(sa.delete(db.dataset_snapshots)
                         .where(db.dataset_snapshots.c.id == snapshot.id))
    shutil.rmtree(snapshot.path, ignore_errors=True)
