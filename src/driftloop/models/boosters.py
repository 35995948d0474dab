"""XGBoost and LightGBM models in their own native files: no pickle, no scikit-learn wrapper.

A :class:`BoosterModel` is a trained booster plus what serving and retraining need that the
native file does not always hold: the feature names in order, the task, the label of each
class (a LightGBM text file stores class indices only) and the training parameters. A
version is the native file (``model.json`` for XGBoost, ``model.txt`` for LightGBM) next
to ``booster.json`` with the rest (format ``driftloop.booster/1``).

xgboost and lightgbm are optional (``pip install 'driftloop[models]'``): they are imported
only when a booster is read, written or trained, so the adapters cost nothing to list.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from driftloop.models.base import UntrustedArtifactError, read_manifest, write_manifest
from driftloop.models.served import rows_frame

FORMAT: Final = "driftloop.booster/1"
MANIFEST: Final = "booster.json"
TASKS: Final = ("binary", "multiclass", "regression")
#: The trainer that retrains a booster with its own framework's training API.
RETRAINER: Final = "driftloop.training.boosters:BoosterTrainer"
#: LightGBM parameters a retrain keeps (the model file stores them all, including ones
#: about the machine it ran on, which must not travel).
LIGHTGBM_PARAMS: Final = (
    "objective", "num_class", "boosting", "learning_rate", "num_leaves", "max_depth",
    "min_data_in_leaf", "min_sum_hessian_in_leaf", "feature_fraction", "bagging_fraction",
    "bagging_freq", "lambda_l1", "lambda_l2", "min_gain_to_split", "max_bin",
    "is_unbalance", "scale_pos_weight", "seed", "linear_tree", "extra_trees")


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UntrustedArtifactError(
            f"{module} is not installed: pip install 'driftloop[models]' (or {module})"
        ) from None


# ---------------------------------------------------------------------------- frameworks
class _XGBoost:
    name = "xgboost"
    native = "model.json"
    suffixes = (".json", ".ubj")

    def read(self, path: Path) -> Any:
        xgb = _require("xgboost")
        booster = xgb.Booster()
        try:
            booster.load_model(str(path))
        except xgb.core.XGBoostError as exc:
            raise ValueError(f"{path}: not an XGBoost model file "
                             f"({str(exc).splitlines()[0]})") from None
        return booster

    def write(self, booster: Any, path: Path) -> None:
        booster.save_model(str(path))

    def objective(self, booster: Any) -> str:
        return str(json.loads(booster.save_config())["learner"]["learner_train_param"]
                   ["objective"])

    def task(self, booster: Any) -> str:
        objective = self.objective(booster)
        if objective == "binary:logistic":
            return "binary"
        if objective in ("multi:softprob", "multi:softmax"):
            return "multiclass"
        if objective.startswith(("reg:", "count:")):
            return "regression"
        raise ValueError(f"XGBoost objective {objective!r} is not supported (binary:logistic, "
                         "multi:softprob, multi:softmax, reg:* and count:* are)")

    def feature_names(self, booster: Any) -> list[str] | None:
        names = booster.feature_names
        return list(names) if names else None

    def num_features(self, booster: Any) -> int:
        return int(booster.num_features())

    def params(self, booster: Any) -> dict[str, Any]:
        """What the native file tells of how it was trained: the objective, the classes
        and the deepest tree. Other settings (learning rate, ...) are not stored in it."""
        config = json.loads(booster.save_config())["learner"]
        params: dict[str, Any] = {"objective": self.objective(booster)}
        num_class = int(config["learner_model_param"]["num_class"])
        if num_class > 1:
            params["num_class"] = num_class
        depths = [_depth(json.loads(tree)) for tree in booster.get_dump(dump_format="json")]
        if depths:
            params["max_depth"] = max(*depths, 1)
        return params

    def rounds(self, booster: Any) -> int:
        return int(booster.num_boosted_rounds())

    def predict(self, booster: Any, values: np.ndarray) -> np.ndarray:
        if self.objective(booster) == "multi:softmax":  # class indices: ask for the scores
            xgb = _require("xgboost")
            margins = booster.predict(xgb.DMatrix(values), output_margin=True)
            return _softmax(np.asarray(margins, dtype=np.float64))
        return np.asarray(booster.inplace_predict(values), dtype=np.float64)

    def train(self, params: Mapping[str, Any], values: pd.DataFrame, labels: np.ndarray,
              rounds: int) -> Any:
        xgb = _require("xgboost")
        matrix = xgb.DMatrix(values, label=labels, feature_names=list(values.columns))
        return xgb.train(dict(params), matrix, num_boost_round=rounds)


class _LightGBM:
    name = "lightgbm"
    native = "model.txt"
    suffixes = (".txt", ".lgb")

    def read(self, path: Path) -> Any:
        lgb = _require("lightgbm")
        try:
            return lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as exc:
            raise ValueError(f"{path}: not a LightGBM model file "
                             f"({str(exc).splitlines()[0]})") from None

    def write(self, booster: Any, path: Path) -> None:
        booster.save_model(str(path))

    def task(self, booster: Any) -> str:
        objective = str(booster.params.get("objective", "regression"))
        if objective in ("binary", "cross_entropy", "xentropy"):
            return "binary"
        if objective in ("multiclass", "softmax", "multiclassova", "ova"):
            return "multiclass"
        return "regression"

    def feature_names(self, booster: Any) -> list[str] | None:
        names = list(booster.feature_name())
        generic = [f"Column_{i}" for i in range(len(names))]
        return None if names == generic else names

    def num_features(self, booster: Any) -> int:
        return int(booster.num_feature())

    def params(self, booster: Any) -> dict[str, Any]:
        return {key: value for key, value in booster.params.items() if key in LIGHTGBM_PARAMS}

    def rounds(self, booster: Any) -> int:
        return int(booster.current_iteration())

    def predict(self, booster: Any, values: np.ndarray) -> np.ndarray:
        return np.asarray(booster.predict(values), dtype=np.float64)

    def train(self, params: Mapping[str, Any], values: pd.DataFrame, labels: np.ndarray,
              rounds: int) -> Any:
        lgb = _require("lightgbm")
        data = lgb.Dataset(values, label=labels, feature_name=list(values.columns))
        return lgb.train({**params, "verbosity": -1}, data, num_boost_round=rounds)


FRAMEWORKS: Final[dict[str, _XGBoost | _LightGBM]] = {"xgboost": _XGBoost(),
                                                      "lightgbm": _LightGBM()}


def _depth(node: Mapping[str, Any]) -> int:
    """The number of split levels of one tree of XGBoost's JSON dump."""
    children = node.get("children") or []
    return 1 + max(_depth(c) for c in children) if children else 0


def _softmax(margins: np.ndarray) -> np.ndarray:
    exp = np.exp(margins - margins.max(axis=1, keepdims=True))
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


# ---------------------------------------------------------------------------- the model
@dataclass(frozen=True, eq=False)
class BoosterModel:
    """A trained XGBoost or LightGBM booster behind the ServedModel contract.

    ``classes[i]`` is the label of class index i (sorted, as scikit-learn's ``classes_``);
    empty for regression. ``params`` and ``rounds`` are what a retrain reuses.
    """

    framework: str
    booster: Any
    features: tuple[str, ...]
    task: str
    classes: tuple[Any, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    rounds: int = 100

    #: Import path of the trainer that retrains this kind of model (the worker asks).
    retrainer = RETRAINER

    def __post_init__(self) -> None:
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"framework: {self.framework!r} is not one of {list(FRAMEWORKS)}")
        if self.task not in TASKS:
            raise ValueError(f"task: {self.task!r} is not one of {TASKS}")
        if (self.task == "regression") != (not self.classes):
            raise ValueError("classes: needed for a classifier, and only for one")
        if self.task == "binary" and len(self.classes) != 2:
            raise ValueError(f"classes: a binary model has two, got {list(self.classes)}")

    @property
    def feature_names_in_(self) -> list[str]:
        """The features the model expects, under scikit-learn's name for them."""
        return list(self.features)

    def values(self, frame: pd.DataFrame) -> np.ndarray:
        """``frame``'s features in the model's order as a float matrix (missing → NaN);
        ValueError naming the column that is not numeric."""
        columns = []
        for name in self.features:
            try:
                columns.append(pd.to_numeric(frame[name]).to_numpy(dtype=np.float64,
                                                                   na_value=np.nan))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"feature {name!r}: expected numbers ({exc})") from None
        return np.column_stack(columns) if columns else np.empty((len(frame), 0))

    def predict_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """P(class) per row and class for a classifier ((rows, classes)), else predictions."""
        raw = FRAMEWORKS[self.framework].predict(self.booster, self.values(frame))
        if self.task == "binary":
            raw = raw.reshape(-1)
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict_batch(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``{"prediction": label, "score": P(classes[1])}`` per row for a binary model,
        ``{"prediction": label}`` for a multiclass one, ``{"prediction": value}`` else: the
        outputs :class:`~driftloop.models.served.SklearnServed` gives."""
        frame = rows_frame(rows, self.features)
        scores = self.predict_scores(frame)
        if self.task == "regression":
            return [{"prediction": float(v)} for v in scores.reshape(-1).tolist()]
        labels = [self.classes[i] for i in scores.argmax(axis=1).tolist()]
        if self.task == "multiclass":
            return [{"prediction": label} for label in labels]
        return [{"prediction": label, "score": score}
                for label, score in zip(labels, scores[:, 1].tolist(), strict=True)]

    def encode_labels(self, labels: pd.Series) -> np.ndarray:
        """Training targets: class indices for a classifier (ValueError naming a label the
        model has no class for), floats for a regressor."""
        if self.task == "regression":
            return pd.to_numeric(labels).to_numpy(dtype=np.float64)
        index = {label: i for i, label in enumerate(self.classes)}
        unknown = sorted({str(v) for v in labels.tolist() if v not in index})
        if unknown:
            raise ValueError(f"label {unknown[0]!r} is not one of the model's classes "
                             f"{list(self.classes)}")
        return np.asarray([index[v] for v in labels.tolist()], dtype=np.float64)

    def retrained(self, booster: Any, params: Mapping[str, Any]) -> BoosterModel:
        return dataclasses.replace(self, booster=booster, params=dict(params),
                                   rounds=FRAMEWORKS[self.framework].rounds(booster))


def booster_model(framework: str, booster: Any, *, features: Sequence[str],
                  labels: Sequence[Any]) -> BoosterModel:
    """A :class:`BoosterModel` for a booster read from a user's file: the task from its
    objective, the feature names from the file (or, for a model trained on an array,
    ``features`` when the count matches) and the classes from the reference ``labels``."""
    kind = FRAMEWORKS[framework]
    task = kind.task(booster)
    names = kind.feature_names(booster)
    if names is None:
        if kind.num_features(booster) != len(features):
            raise ValueError(f"the model has {kind.num_features(booster)} unnamed features "
                             f"and the data {len(features)}: train it on a DataFrame so its "
                             "columns can be matched by name")
        names = list(features)
    classes: tuple[Any, ...] = ()
    if task != "regression":
        distinct = sorted(pd.Series(list(labels)).dropna().unique().tolist())
        expected = 2 if task == "binary" else int(kind.params(booster).get("num_class", 0))
        if len(distinct) != expected:
            raise ValueError(f"the model predicts {expected} classes but the label column "
                             f"holds {len(distinct)} distinct values {distinct[:10]}")
        _check_scalars(distinct)
        classes = tuple(distinct)
    return BoosterModel(framework, booster, tuple(names), task, classes,
                        kind.params(booster), kind.rounds(booster))


def _check_scalars(values: Sequence[Any]) -> None:
    for value in values:
        if not (isinstance(value, str | int | bool)
                or (isinstance(value, float) and math.isfinite(value))):
            raise ValueError(f"label {value!r}: labels must be strings, integers or finite "
                             "numbers")


# ---------------------------------------------------------------------------- adapters
class _BoosterAdapter:
    """Stores a :class:`BoosterModel` of one framework as its native file and
    ``booster.json``; reads a user's native file for ``driftloop models push``."""

    framework: str

    @property
    def suffixes(self) -> tuple[str, ...]:
        return FRAMEWORKS[self.framework].suffixes

    def handles(self, model: Any) -> bool:
        return isinstance(model, BoosterModel) and model.framework == self.framework

    def save(self, model: Any, directory: Path) -> None:
        kind = FRAMEWORKS[self.framework]
        kind.write(model.booster, directory / kind.native)
        write_manifest(directory / MANIFEST, {
            "format": FORMAT, "framework": self.framework, "native": kind.native,
            "features": list(model.features), "task": model.task,
            "classes": list(model.classes), "params": dict(model.params),
            "rounds": model.rounds})

    def load(self, directory: Path) -> BoosterModel:
        kind = FRAMEWORKS[self.framework]
        document = read_manifest(directory / MANIFEST, FORMAT)
        if document.get("framework") != self.framework or document.get("native") != kind.native:
            raise UntrustedArtifactError(f"{directory / MANIFEST}: not a {self.framework} "
                                         "booster")
        try:
            booster = kind.read(directory / kind.native)
            return BoosterModel(self.framework, booster, tuple(document["features"]),
                                document["task"], tuple(document["classes"]),
                                dict(document["params"]), int(document["rounds"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UntrustedArtifactError(f"{directory}: not a valid {FORMAT} model: "
                                         f"{exc}") from None

    def read_file(self, path: Path, labels: Sequence[Any],
                  features: Sequence[str]) -> BoosterModel:
        booster = FRAMEWORKS[self.framework].read(path)
        return booster_model(self.framework, booster, features=features, labels=labels)


class XGBoostAdapter(_BoosterAdapter):
    framework = "xgboost"


class LightGBMAdapter(_BoosterAdapter):
    framework = "lightgbm"
