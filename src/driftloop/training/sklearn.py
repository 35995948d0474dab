"""The built-in scikit-learn trainer: retrains the champion's own estimator by default.

With no ``estimator`` configured (the default), a run retrains what the champion is: a
scikit-learn estimator or pipeline is cloned (same class, same parameters) and fitted on
the snapshot, from the champion's fitted state where the estimator's ``warm_start`` means
"start from the previous solution" (linear models, neural networks; not ensembles, where it
means "add trees" and would leave the old ones untouched). Only when there is no
scikit-learn champion does it fall back to a default pipeline around LogisticRegression,
and it says so in the run log.

Naming an ``estimator`` by import path (``"sklearn.ensemble.HistGradientBoostingClassifier"``,
with keyword ``params``) fits that estimator instead, behind imputation, scaling and
one-hot encoding: numeric columns imputed (median) and standardised, the others imputed
(most frequent) and one-hot encoded with unknown categories ignored, so a category first
seen in live traffic never breaks serving. With ``warm_start`` and a parent pipeline of the
same estimator class, training starts from the parent's fitted state.
"""

from __future__ import annotations

import copy
import importlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from driftloop.training.base import TrainerError

if TYPE_CHECKING:  # the data layer needs sqlalchemy; training alone (a GPU box) may not
    from driftloop.data.snapshots import Snapshot

logger = logging.getLogger("driftloop.training")

DEFAULT_ESTIMATOR = "sklearn.linear_model.LogisticRegression"
#: The ``trainer`` setting's default: this class, configured with nothing.
DEFAULT_TRAINER = "driftloop.training.sklearn:SklearnTrainer"


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
    """Refits the champion's estimator, or fits ``estimator(**params)`` behind imputation,
    scaling and one-hot encoding when one is named (see the module docstring)."""

    def __init__(self, estimator: str | None = None,
                 params: Mapping[str, Any] | None = None, warm_start: bool | None = None) -> None:
        self.estimator = estimator
        self.params = dict(params or {})
        self.warm_start = warm_start
        if estimator is not None:
            import_object(estimator)  # fail at configuration time, naming the path

    def train(self, snapshot: Snapshot, parent: Any | None, params: Mapping[str, Any]) -> Any:
        features, labels = feature_frame(snapshot)
        if len(features) == 0:
            raise TrainerError(f"snapshot {snapshot.id} has no training rows")
        model, how = self._model(features, parent, params)
        if labels.nunique() < 2 and is_classifier(model):
            raise TrainerError(f"snapshot {snapshot.id} holds one class only "
                               f"({labels.iloc[0]!r}): a classifier needs at least two")
        logger.info("training %s on %d rows x %d features (%s)", _describe(model),
                    len(features), features.shape[1], how)
        started = time.perf_counter()
        try:
            model.fit(features, labels)
        except ValueError as exc:
            if "warm start" not in how:
                raise
            # A warm start needs the same layout (a class the champion never saw changes
            # the coefficients' shape): start from scratch instead.
            logger.info("warm start failed (%s): refitting from scratch", exc)
            model = clone(parent)
            model.fit(features, labels)
        logger.info("trained in %.2f s; training score %.4f", time.perf_counter() - started,
                    model.score(features, labels))
        return model

    def _model(self, features: pd.DataFrame, parent: Any | None,
               params: Mapping[str, Any]) -> tuple[Any, str]:
        """The unfitted model and a few words on where it came from, for the run log."""
        if self.estimator is not None:
            warm = self._warm(parent) if self.warm_start else None
            if warm is not None:
                return warm, "the configured estimator, warm start from the champion"
            fresh = self._fresh(features, self.estimator, {**self.params, **params})
            return fresh, "the configured estimator, from scratch"
        if isinstance(parent, BaseEstimator):
            final = _final(parent)
            if self.warm_start is not False and _warm_startable(final):
                model = copy.deepcopy(parent)
                _final(model).set_params(warm_start=True)
                return model, ("the champion's estimator, warm start from its fitted "
                               "coefficients")
            model = clone(parent)
            if params:
                _final(model).set_params(**params)
            reason = ("warm start not supported" if "warm_start" not in final.get_params()
                      else "an ensemble: warm start would only add members"
                      if self.warm_start is not False else "warm start turned off")
            return model, f"the champion's estimator, cloned and refitted ({reason})"
        fallback = self._fresh(features, DEFAULT_ESTIMATOR, {**self.params, **params})
        kind = "no champion" if parent is None else f"the champion is a {type(parent).__name__}"
        return fallback, (f"{kind}, not a scikit-learn estimator: the default "
                          "LogisticRegression pipeline")

    def _fresh(self, features: pd.DataFrame, estimator: str,
               params: Mapping[str, Any]) -> Pipeline:
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
                         ("estimator", import_object(estimator)(**params))])

    def _warm(self, parent: Any | None) -> Pipeline | None:
        if not isinstance(parent, Pipeline):
            return None
        estimator = parent.steps[-1][1]
        assert self.estimator is not None
        wanted = import_object(self.estimator)
        if type(estimator) is not wanted or "warm_start" not in estimator.get_params():
            logger.info("warm start skipped: the parent's estimator is a %s",
                        type(estimator).__name__)
            return None
        model = copy.deepcopy(parent)
        model.steps[-1][1].set_params(warm_start=True)
        return model


def _final(model: Any) -> Any:
    """A pipeline's last step (recursively), else the estimator itself."""
    while isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return model


def _warm_startable(estimator: Any) -> bool:
    """Whether ``warm_start`` starts from the previous solution rather than adding members
    to an ensemble (where the old members would stay as they are)."""
    return ("warm_start" in estimator.get_params()
            and not type(estimator).__module__.startswith("sklearn.ensemble"))


def _describe(model: Any) -> str:
    final = _final(model)
    name = f"{type(final).__module__}.{type(final).__name__}"
    return f"{name} (in a pipeline)" if final is not model else name
