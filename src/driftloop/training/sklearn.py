"""The built-in scikit-learn trainer: a preprocessing pipeline around any estimator.

Numeric columns are imputed (median) and standardised, the others imputed (most frequent)
and one-hot encoded with unknown categories ignored, so a category first seen in live
traffic never breaks serving. The estimator is named by import path
(``"sklearn.ensemble.HistGradientBoostingClassifier"``) with keyword params, so the
trainer can be configured from TOML or JSON. With ``warm_start`` and a parent pipeline of
the same estimator class that supports ``warm_start``, training starts from the parent's
fitted state (more trees, or the previous coefficients as the starting point).
"""

from __future__ import annotations

import copy
import importlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from driftloop.training.base import TrainerError

if TYPE_CHECKING:  # the data layer needs sqlalchemy; training alone (a GPU box) may not
    from driftloop.data.snapshots import Snapshot

logger = logging.getLogger("driftloop.training")

DEFAULT_ESTIMATOR = "sklearn.linear_model.LogisticRegression"


def import_object(path: str) -> Any:
    """``"package.module:Name"`` or ``"package.module.Name"`` → the object."""
    module, _, name = path.partition(":") if ":" in path else path.rpartition(".")
    if not module or not name:
        raise ValueError(f"{path!r} is not an import path like 'package.module.Name'")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {path!r}: {exc}") from exc


def feature_frame(snapshot: Snapshot, part: str = "train") -> tuple[pd.DataFrame, pd.Series]:
    """The features and labels of a snapshot part ("train" or "holdout"): every column but
    the label, the entity and the time column (roles from the manifest)."""
    path = snapshot.train_path if part == "train" else snapshot.holdout_path
    frame = pd.read_parquet(path)
    roles = snapshot.manifest["columns"]
    label = roles["label"]
    drop = {label, roles["entity"], roles["timestamp"], roles["source_timestamp"]}
    return frame[[c for c in frame.columns if c not in drop]], frame[label]


class SklearnTrainer:
    """Fits ``estimator(**params)`` behind imputation, scaling and one-hot encoding."""

    def __init__(self, estimator: str = DEFAULT_ESTIMATOR,
                 params: Mapping[str, Any] | None = None, warm_start: bool = False) -> None:
        self.estimator = estimator
        self.params = dict(params or {})
        self.warm_start = warm_start
        import_object(estimator)  # fail at configuration time, naming the path

    def train(self, snapshot: Snapshot, parent: Any | None, params: Mapping[str, Any]) -> Any:
        features, labels = feature_frame(snapshot)
        if len(features) == 0:
            raise TrainerError(f"snapshot {snapshot.id} has no training rows")
        if labels.nunique() < 2 and _is_classifier(self.estimator):
            raise TrainerError(f"snapshot {snapshot.id} holds one class only "
                               f"({labels.iloc[0]!r}): a classifier needs at least two")
        warm = self._warm(parent)
        model = warm or self._fresh(features, {**self.params, **params})
        logger.info("training %s on %d rows x %d features (%s)", self.estimator, len(features),
                    features.shape[1], "warm start" if warm else "from scratch")
        started = time.perf_counter()
        model.fit(features, labels)
        logger.info("trained in %.2f s; training score %.4f", time.perf_counter() - started,
                    model.score(features, labels))
        return model

    def _fresh(self, features: pd.DataFrame, params: Mapping[str, Any]) -> Pipeline:
        numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])
                   and not pd.api.types.is_bool_dtype(features[c])]
        other = [c for c in features.columns if c not in numeric]
        columns = ColumnTransformer([
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")),
                                  ("scale", StandardScaler())]), numeric),
            ("categorical", Pipeline([
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]),
             other),
        ])
        return Pipeline([("columns", columns),
                         ("estimator", import_object(self.estimator)(**params))])

    def _warm(self, parent: Any | None) -> Pipeline | None:
        if not self.warm_start or not isinstance(parent, Pipeline):
            return None
        estimator = parent.steps[-1][1]
        wanted = import_object(self.estimator)
        if type(estimator) is not wanted or "warm_start" not in estimator.get_params():
            logger.info("warm start skipped: the parent's estimator is a %s",
                        type(estimator).__name__)
            return None
        model = copy.deepcopy(parent)
        model.steps[-1][1].set_params(warm_start=True)
        return model


def _is_classifier(path: str) -> bool:
    from sklearn.base import is_classifier  # noqa: PLC0415 - only needed here

    try:
        return bool(is_classifier(import_object(path)()))
    except TypeError:  # needs constructor arguments: assume a classifier, the common case
        return True
