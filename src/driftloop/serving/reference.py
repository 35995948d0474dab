"""The drift reference: the champion's training rows and its outputs on rows it was not fit on.

Both the start-up and a promotion need them (the detector compares live traffic against
them, the request schema and the warm-up rows come from them), so building them is one
job in one place, apart from the loading and swapping of models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from driftloop.config import Settings
from driftloop.data.snapshots import SnapshotStore
from driftloop.drift import DriftDetector
from driftloop.errors import UnavailableError
from driftloop.models.served import ServedModel, monitored_output, plain_value
from driftloop.registry import ModelRegistry, ModelVersion
from driftloop.tables import read_table

#: Reference rows the detector and the output profile are built on (a uniform sample).
MAX_REFERENCE_ROWS = 100_000


class ServiceUnavailableError(UnavailableError, RuntimeError):
    """The service cannot serve yet (no champion, no reference); the message says what to do."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: str  # "number" | "string" | "boolean"
    nullable: bool  # the training data had missing values here, so the model copes


class ReferenceData:
    """Builds a champion's input and output reference, and keeps the current input one.

    ``frame`` is the current champion's training rows (features only); ``features`` the
    request schema, fixed at start-up from the first champion's rows."""

    def __init__(self, settings: Settings, registry: ModelRegistry) -> None:
        self.settings, self.registry = settings, registry
        self.name = settings.model_name
        self.frame: pd.DataFrame | None = None
        self.features: list[FeatureSpec] = []

    def load(self, champion: ModelVersion) -> pd.DataFrame:
        """The feature rows ``champion`` was trained on (label, id and time dropped)."""
        drop = set(self.settings.ignore_columns)
        if champion.dataset_id:
            snapshot = SnapshotStore.for_registry(self.registry).get(champion.dataset_id)
            frame = pd.read_parquet(snapshot.train_path)
            # The snapshot names its own label, id and time columns (a pushed model's label
            # need not be called what the settings say).
            drop.update(str(c) for c in snapshot.manifest["columns"].values() if c)
        elif self.settings.reference is not None:
            frame = read_table(self.settings.reference).to_pandas()
            drop.add(self.settings.label_column)
        else:
            raise ServiceUnavailableError(
                f"{self.name} v{champion.version} has no training snapshot: set `reference` "
                "(DRIFTLOOP_REFERENCE) to its training data so requests can be validated and "
                "drift measured")
        frame = frame[[c for c in frame.columns if c not in drop]]
        if len(frame) > MAX_REFERENCE_ROWS:
            frame = frame.sample(MAX_REFERENCE_ROWS, random_state=0)
        return frame.reset_index(drop=True)

    def start(self, champion: ModelVersion) -> None:
        """Start-up: the first champion's rows become the reference and the schema."""
        self.frame = self.load(champion)
        self.features = feature_specs(self.frame)

    def rows(self, n: int) -> list[dict[str, Any]]:
        """``n`` reference rows as requests would send them (to warm a model on)."""
        assert self.frame is not None
        return [{str(k): plain_value(v) for k, v in row.items()}
                for row in self.frame.head(n).to_dict(orient="records")]

    def outputs(self, champion: ModelVersion, model: ServedModel,
                reference: pd.DataFrame) -> tuple[list[Any], str]:
        """The champion's outputs on rows it was not fit on, and which rows they are.

        Outputs on its own training rows are more confident than on any new traffic for a
        model that fits its training data closely (a default random forest: the output
        looked drifted at every evaluation, and each retrain rebuilt the same trap), so:
        the snapshot's holdout; else ``output_reference`` (rows the user knows the model
        was not fit on); else, as a last resort, the reference rows, and the source says
        that the output's drift is then not to be trusted.
        """
        frame, source = self._holdout_rows(champion)
        if frame is None:
            frame, source = reference, (
                f"the reference rows ({len(reference)}); they may include the rows the model "
                "was fit on, so an overfit model's output will look drifted: set "
                "output_reference (DRIFTLOOP_OUTPUT_REFERENCE) to rows it was not fit on")
        drop = {self.settings.label_column, *self.settings.ignore_columns}
        rows = [{str(k): plain_value(v) for k, v in row.items() if k not in drop}
                for row in frame.to_dict(orient="records")]
        return [monitored_output(o) for o in model.predict_batch(rows)], source

    def detector(self, champion: ModelVersion, model: ServedModel) -> DriftDetector:
        """The drift detector on the current reference and ``champion``'s outputs."""
        assert self.frame is not None
        outputs, source = self.outputs(champion, model, self.frame)
        return reference_detector(self.frame, outputs, self.settings, source)

    def _holdout_rows(self, champion: ModelVersion) -> tuple[pd.DataFrame | None, str]:
        if champion.dataset_id:
            store = SnapshotStore.for_registry(self.registry)
            holdout = pd.read_parquet(store.get(champion.dataset_id).holdout_path)
            if len(holdout):
                if len(holdout) > MAX_REFERENCE_ROWS:
                    holdout = holdout.sample(MAX_REFERENCE_ROWS, random_state=0)
                return holdout, (f"holdout of snapshot {champion.dataset_id} ({len(holdout)} "
                                 f"rows v{champion.version} was not fit on)")
        if self.settings.output_reference is not None:
            frame = read_table(self.settings.output_reference).to_pandas()
            return frame, (f"output_reference {self.settings.output_reference} "
                           f"({len(frame)} rows)")
        return None, ""


def reference_detector(reference: pd.DataFrame, outputs: list[Any] | None,
                       settings: Settings, output_source: str | None = None) -> DriftDetector:
    """The drift detector the server builds on a champion's reference data (``driftloop
    models push`` builds it too, to refuse data it would fail on before writing anything).

    A numeric column with a single value in the reference (a pixel that is blank in every
    training image) has no spread for KS or PSI; it is watched as a category instead, so
    any other value in live traffic counts as drift."""
    constant = [str(name) for name in reference.columns
                if pd.api.types.is_numeric_dtype(reference[name])
                and not pd.api.types.is_bool_dtype(reference[name])
                and reference[name].nunique(dropna=True) <= 1]
    return DriftDetector.from_reference(
        reference, output=outputs, output_source=output_source, categorical=constant,
        window=settings.drift_window, panes=settings.drift_panes,
        pane_seconds=settings.pane_seconds)


def feature_specs(frame: pd.DataFrame) -> list[FeatureSpec]:
    specs = []
    for name, dtype in frame.dtypes.items():
        kind = ("boolean" if pd.api.types.is_bool_dtype(dtype)
                else "number" if pd.api.types.is_numeric_dtype(dtype) else "string")
        specs.append(FeatureSpec(str(name), kind, bool(frame[name].isna().any())))
    return specs

