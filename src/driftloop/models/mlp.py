"""A small multilayer perceptron as plain numpy: trained with torch, served without it.

:class:`~driftloop.training.torch_mlp.TorchTrainer` trains the network with PyTorch (on a
GPU when there is one) and hands back an :class:`MLPModel`: float32 weight arrays, the
input encoding and the classes. Serving runs the forward pass here, in numpy, so a server
needs neither torch nor a GPU, and the artifact is arrays plus JSON — nothing that a load
could execute (:class:`MLPAdapter`, format ``driftloop.mlp/1``)::

    weights.npz   w0, b0, w1, b1, ...  float32; w<i> is (inputs, outputs) of layer i
    model.json    format tag, activation, layer shapes, input encoding, classes, provenance

The network is ``relu(x @ w0 + b0)`` through every hidden layer, then a linear layer and
a softmax over the classes. The input encoding (:class:`Encoder`) is fitted on the
training rows, one block per feature in feature order:

* numeric columns (a numeric dtype, not bool): ``(x - mean) / std`` with the training
  mean and standard deviation; a missing or non-finite value becomes the mean (0 after
  scaling), as the scikit-learn trainer's imputer would do with its median;
* other columns: one-hot over the categories seen in training; an unknown or missing value
  is all zeros, so a category first seen in live traffic never breaks serving.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from driftloop.models.base import UntrustedArtifactError, read_manifest, write_manifest
from driftloop.models.served import rows_frame

FORMAT: Final = "driftloop.mlp/1"
WEIGHTS: Final = "weights.npz"
MANIFEST: Final = "model.json"
ACTIVATION: Final = "relu"  # the only one: recorded so that a future format can add others

#: A JSON scalar: what a category or a class may be, so model.json can hold it exactly.
Scalar = str | int | float | bool


# ---------------------------------------------------------------------------- encoding
@dataclass(frozen=True)
class NumericColumn:
    """A numeric feature, standardised; missing or non-finite → the mean."""

    name: str
    mean: float
    std: float

    def __post_init__(self) -> None:
        if not (_finite(self.mean) and _finite(self.std) and self.std > 0):
            raise ValueError(f"column {self.name!r}: mean and std must be finite, std > 0")

    @property
    def width(self) -> int:
        return 1

    @classmethod
    def fit(cls, name: str, values: pd.Series) -> NumericColumn:
        numbers = _numbers(name, values)
        finite = numbers[np.isfinite(numbers)]
        if finite.size == 0:  # nothing to learn from: every value encodes as 0
            return cls(name, 0.0, 1.0)
        std = float(finite.std())
        return cls(name, float(finite.mean()), std if std > 0 else 1.0)

    def encode(self, values: pd.Series) -> np.ndarray:
        scaled = (_numbers(self.name, values) - self.mean) / self.std
        return np.where(np.isfinite(scaled), scaled, 0.0)[:, None]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "numeric", "mean": self.mean, "std": self.std}


@dataclass(frozen=True)
class CategoricalColumn:
    """A categorical feature, one-hot over the training categories; others → all zeros."""

    name: str
    categories: tuple[Scalar, ...]

    def __post_init__(self) -> None:
        _check_scalars(f"column {self.name!r}: categories", self.categories)

    @property
    def width(self) -> int:
        return len(self.categories)

    @functools.cached_property
    def _index(self) -> dict[Scalar, int]:
        return {category: i for i, category in enumerate(self.categories)}

    @classmethod
    def fit(cls, name: str, values: pd.Series) -> CategoricalColumn:
        seen = values.dropna().drop_duplicates().tolist()
        odd = sorted({type(v).__name__ for v in seen if not _scalar(v)})
        if odd:
            raise ValueError(f"column {name!r}: values of type {', '.join(odd)} can be neither "
                             "standardised nor one-hot encoded; convert them to numbers or "
                             "strings")
        return cls(name, tuple(sorted(seen, key=lambda v: (type(v).__name__, v))))

    def encode(self, values: pd.Series) -> np.ndarray:
        out = np.zeros((len(values), self.width))
        for row, value in enumerate(values.tolist()):
            column = self._index.get(value) if _scalar(value) else None
            if column is not None:
                out[row, column] = 1.0
        return out

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "categorical", "categories": list(self.categories)}


Column = NumericColumn | CategoricalColumn


@dataclass(frozen=True)
class Encoder:
    """Raw feature columns → the network's float32 input matrix (see the module docstring)."""

    columns: tuple[Column, ...]

    def __post_init__(self) -> None:
        if not self.columns:
            raise ValueError("there are no feature columns to learn from")
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"feature names must be distinct, got {self.features}")

    @property
    def features(self) -> list[str]:
        """The feature order: the input columns' names."""
        return [column.name for column in self.columns]

    @property
    def width(self) -> int:
        """Columns of the encoded matrix: the first layer's inputs."""
        return sum(column.width for column in self.columns)

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> Encoder:
        """The encoding of ``frame``'s columns, in their order, fitted on its rows."""
        columns: list[Column] = []
        for name in frame.columns:
            values = frame[name]
            numeric = (pd.api.types.is_numeric_dtype(values)
                       and not pd.api.types.is_bool_dtype(values))
            fit = NumericColumn.fit if numeric else CategoricalColumn.fit
            columns.append(fit(str(name), values))
        return cls(tuple(columns))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The encoded rows of ``frame`` (which must hold every feature), float32."""
        blocks = [column.encode(frame[column.name]) for column in self.columns]
        return np.hstack(blocks).astype(np.float32)

    def difference(self, other: Encoder) -> str | None:
        """Why ``other`` does not encode the same inputs into the same slots (None if it
        does): what must match for weights to carry over from one to the other."""
        if self.features != other.features:
            return f"the features {self.features} differ from {other.features}"
        for mine, theirs in zip(self.columns, other.columns, strict=True):
            if type(mine) is not type(theirs):
                return f"column {mine.name!r} changed between numeric and categorical"
            if isinstance(mine, CategoricalColumn) and mine != theirs:
                return f"column {mine.name!r} has other categories"
        return None

    def to_json(self) -> list[dict[str, Any]]:
        return [column.to_json() for column in self.columns]

    @classmethod
    def from_json(cls, document: Any) -> Encoder:
        if not isinstance(document, list):
            raise ValueError("columns: must be a list")
        columns: list[Column] = []
        for item in document:
            kind = item.get("kind") if isinstance(item, dict) else None
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                raise ValueError("columns: every column needs a string name")
            if kind == "numeric":
                columns.append(NumericColumn(name, item.get("mean"), item.get("std")))
            elif kind == "categorical" and isinstance(item.get("categories"), list):
                columns.append(CategoricalColumn(name, tuple(item["categories"])))
            else:
                raise ValueError(f"column {name!r}: kind must be numeric or categorical (with "
                                 "a list of categories)")
        return cls(tuple(columns))


# ---------------------------------------------------------------------------- the model
@dataclass(frozen=True, eq=False)
class MLPModel:
    """A trained classifier: the encoding, the layers and the classes, all plain data.

    ``weights[i]`` is layer i's (inputs, outputs) float32 matrix and ``biases[i]`` its
    float32 vector; ``classes`` are in the order of the output units (sorted, as
    scikit-learn's ``classes_``), so ``score`` is P(``classes[1]``) for a binary model.
    ``provenance`` says how it was trained (device, epochs, torch version, ...).
    """

    encoder: Encoder
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    classes: tuple[Scalar, ...]
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.weights or len(self.weights) != len(self.biases):
            raise ValueError("weights and biases: one of each per layer, at least one layer")
        inputs = self.encoder.width
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.dtype != np.float32 or b.dtype != np.float32:
                raise ValueError(f"layer {i}: weights and bias must be float32")
            if w.ndim != 2 or w.shape[0] != inputs or b.shape != (w.shape[1],):
                raise ValueError(f"layer {i}: expected a ({inputs}, n) weight and an (n,) bias, "
                                 f"got {w.shape} and {b.shape}")
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise ValueError(f"layer {i}: weights must be finite")
            inputs = w.shape[1]
        if len(self.classes) < 2 or inputs != len(self.classes):
            raise ValueError(f"classes: the last layer has {inputs} outputs for "
                             f"{len(self.classes)} classes (at least two needed)")
        _check_scalars("classes", self.classes)

    @property
    def features(self) -> list[str]:
        return self.encoder.features

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        return [(int(w.shape[0]), int(w.shape[1])) for w in self.weights]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, classes) float32 probabilities of ``frame``'s rows: the forward pass."""
        hidden = self.encoder.transform(frame)
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            hidden = np.maximum(hidden @ w + b, 0.0)
        logits = hidden @ self.weights[-1] + self.biases[-1]
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        proba: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
        return proba

    def predict_batch(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``{"prediction": label}`` per row, plus ``"score"`` = P(``classes[1]``) when
        binary: the outputs :class:`~driftloop.models.served.SklearnServed` gives."""
        frame = rows_frame(rows, self.features)
        proba = self.predict_proba(frame)
        labels = [self.classes[i] for i in proba.argmax(axis=1).tolist()]
        if len(self.classes) != 2:
            return [{"prediction": label} for label in labels]
        return [{"prediction": label, "score": score}
                for label, score in zip(labels, proba[:, 1].tolist(), strict=True)]

    def reencoded(self, encoder: Encoder) -> MLPModel:
        """This network behind ``encoder``, computing the same function of the raw inputs
        (missing values aside: they now become ``encoder``'s means).

        A warm start refits the standardisation on the new data; folding the change into
        the first layer (each numeric input's weights scaled by new std / old std, the
        shift of the means moved into the bias) means training resumes from exactly the
        parent's predictions. ValueError when ``encoder`` lays the inputs out differently.
        """
        difference = self.encoder.difference(encoder)
        if difference is not None:
            raise ValueError(difference)
        w0 = self.weights[0].astype(np.float64)
        b0 = self.biases[0].astype(np.float64)
        offset = 0
        for old, new in zip(self.encoder.columns, encoder.columns, strict=True):
            if isinstance(old, NumericColumn) and isinstance(new, NumericColumn):
                row = w0[offset].copy()
                b0 += row * (new.mean - old.mean) / old.std
                w0[offset] = row * (new.std / old.std)
            offset += old.width
        return dataclasses.replace(
            self, encoder=encoder, weights=(w0.astype(np.float32), *self.weights[1:]),
            biases=(b0.astype(np.float32), *self.biases[1:]))


# ---------------------------------------------------------------------------- the adapter
class MLPAdapter:
    """Stores an :class:`MLPModel` as ``weights.npz`` (arrays only) and ``model.json``;
    loads refuse pickled arrays, another format tag and weights of the wrong shape."""

    framework = "mlp"

    def handles(self, model: Any) -> bool:
        return isinstance(model, MLPModel)

    def save(self, model: Any, directory: Path) -> None:
        arrays = {f"w{i}": w for i, w in enumerate(model.weights)}
        arrays.update({f"b{i}": b for i, b in enumerate(model.biases)})
        np.savez(directory / WEIGHTS, **arrays)
        document = {"format": FORMAT, "activation": ACTIVATION,
                    "layers": [list(shape) for shape in model.layer_shapes],
                    "columns": model.encoder.to_json(), "classes": list(model.classes),
                    "provenance": dict(model.provenance)}
        write_manifest(directory / MANIFEST, document)

    def load(self, directory: Path) -> MLPModel:
        path = directory / MANIFEST
        document = read_manifest(path, FORMAT)
        if document.get("activation") != ACTIVATION:
            raise UntrustedArtifactError(f"{path}: activation {document.get('activation')!r} "
                                         f"is not {ACTIVATION!r}")
        try:
            layers = [tuple(shape) for shape in document["layers"]]
            weights, biases = _read_weights(directory / WEIGHTS, layers)
            return MLPModel(Encoder.from_json(document["columns"]), weights, biases,
                            tuple(document["classes"]), dict(document["provenance"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UntrustedArtifactError(f"{directory}: not a valid {FORMAT} model: "
                                         f"{exc}") from None


def _read_weights(path: Path, layers: list[tuple[Any, ...]],
                  ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """The arrays of ``weights.npz``, which must be exactly the float32 ``w<i>``/``b<i>``
    of the shapes ``layers`` declares (model.json)."""
    expected = {f"{kind}{i}" for i in range(len(layers)) for kind in "wb"}
    try:
        with np.load(path, allow_pickle=False) as archive:
            if set(archive.files) != expected:
                raise ValueError(f"{WEIGHTS} holds {sorted(archive.files)}, expected "
                                 f"{sorted(expected)}")
            arrays = {name: archive[name] for name in expected}
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{WEIGHTS} is not a readable .npz file: {exc}") from None
    for i, shape in enumerate(layers):
        w, b = arrays[f"w{i}"], arrays[f"b{i}"]
        if w.shape != shape or b.shape != shape[1:]:
            raise ValueError(f"layer {i}: weights {w.shape} and bias {b.shape} do not match "
                             f"the declared shape {shape}")
    return (tuple(arrays[f"w{i}"] for i in range(len(layers))),
            tuple(arrays[f"b{i}"] for i in range(len(layers))))


def _numbers(name: str, values: pd.Series) -> np.ndarray:
    """``values`` as float64, missing values as NaN; ValueError naming the column when a
    value is not a number."""
    try:
        return pd.to_numeric(values).to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"column {name!r}: expected numbers: {exc}") from None


def _check_scalars(what: str, values: Sequence[Any]) -> None:
    """Categories and classes are distinct JSON scalars, so model.json holds them exactly."""
    if any(not _scalar(value) for value in values):
        raise ValueError(f"{what}: must be strings, integers, finite floats or booleans")
    if len(set(values)) != len(values):
        raise ValueError(f"{what}: must be distinct")


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | bool) or (isinstance(value, float)
                                                   and math.isfinite(value))


def _finite(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))
