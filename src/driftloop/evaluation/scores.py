"""Metrics that compare a candidate model with the champion, offline and online.

A :class:`Metric` has two faces:

- ``aggregate(outputs, labels)``: the usual number on a holdout (accuracy, ROC AUC,
  RMSE, ...), oriented the usual way (RMSE: lower is better); ``higher_is_better`` says
  which way.
- ``per_row(output, label)``: a score for *one* labelled request, always oriented so that
  higher is better and always inside ``[low, high]``. The online gate compares champion
  and candidate on the same requests through these; its confidence sequence needs
  bounded observations, which is why every per-row score has a documented range.

F1 and ROC AUC are not means over rows. The online gate tests F1 as F1, through the
means it is a monotone function of (:mod:`~driftloop.evaluation.paired_f1`); ROC AUC, a
ranking of pairs of requests, has no such test here and is refused for the online gate
(its holdout value is still computed). Their ``per_row`` faces (accuracy, Brier) are only
per-request summaries, never what a verdict is decided on.

Model outputs are ``{"prediction": label}``, ``{"prediction": label, "score": p}`` for a
binary classifier (``p`` = probability of the second of the sorted classes, scikit-learn's
``classes_[1]``) or ``{"prediction": number}`` for a regressor. ``None`` means the model
failed on that row (raised, timed out). Failed rows are never dropped: they score as the
worst prediction possible (wrong class, probability 1 on the wrong class, an error of
``error_clip``), in the aggregate and per row alike. A score that is not a probability
(NaN, outside [0, 1]) or a non-finite regression prediction is scored the same way.

>>> acc = metric("accuracy")
>>> acc.aggregate([{"prediction": "a"}, None], ["a", "a"])
0.5
>>> acc.per_row(None, "a"), (acc.low, acc.high)
(0.0, (0.0, 1.0))
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import f1_score, roc_auc_score

Output = Mapping[str, Any] | None
Label = str | int | float | bool
Aggregate = Callable[[Sequence[Output], Sequence[Label]], float]
PerRow = Callable[[Output, Label], float]
FloatArray = npt.NDArray[np.float64]

#: Probabilities are clipped to [LOG_LOSS_EPS, 1 - LOG_LOSS_EPS] in log loss, so one
#: confident mistake costs at most -ln(1e-6) ~ 13.8 and the per-row score stays bounded.
LOG_LOSS_EPS = 1e-6

BUILTIN_METRICS = ("accuracy", "f1", "roc_auc", "log_loss", "rmse", "mae")


@dataclass(frozen=True)
class Metric:
    """A holdout metric and its bounded, higher-is-better per-row score in [low, high]."""

    name: str
    higher_is_better: bool
    aggregate: Aggregate
    per_row: PerRow
    low: float
    high: float
    #: Why the online gate cannot test this metric (None: it can).
    online_refusal: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"metric {self.name!r} needs finite low < high, "
                             f"got [{self.low}, {self.high}]")


def metric(
    spec: str | Callable[[Sequence[Output], Sequence[Label]], float] | Metric,
    *,
    error_clip: float | None = None,
    higher_is_better: bool | None = None,
    bounds: tuple[float, float] | None = None,
) -> Metric:
    """A :class:`Metric` from a built-in name, ``"package.module:function"``, a callable,
    or a Metric (returned as is).

    ``rmse`` and ``mae`` need ``error_clip``: the absolute error (in label units) beyond
    which a row counts as simply wrong. Errors have no natural bound, so without it a
    single wild row could outweigh thousands; there is no scale-free default, hence no
    default at all.

    A custom function takes ``(outputs, labels)`` (failed outputs arrive as None) and
    needs ``higher_is_better`` and ``bounds=(low, high)``, the range of its value on a
    single row; its per-row score is the function applied to that one row, negated when
    lower is better, and a value outside ``bounds`` raises ValueError.
    """
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, str) and ":" not in spec:
        if spec in ("rmse", "mae"):
            return _regression(spec, error_clip)
        if spec in _CLASSIFICATION:
            return _CLASSIFICATION[spec]
        raise ValueError(f"unknown metric {spec!r}: choose from {', '.join(BUILTIN_METRICS)}, "
                         "or give 'package.module:function'")
    fn = _import(spec) if isinstance(spec, str) else spec
    name = spec if isinstance(spec, str) else getattr(fn, "__qualname__", repr(fn))
    if higher_is_better is None or bounds is None:
        raise ValueError(f"custom metric {name!r} needs higher_is_better= and "
                         "bounds=(low, high), the range of its value on one row")
    return _custom(name, fn, higher_is_better, bounds)


# --- classification ------------------------------------------------------------------


def _rows(outputs: Sequence[Output], labels: Sequence[Label]) -> list[tuple[Output, Label]]:
    rows = list(zip(outputs, labels, strict=True))
    if not rows:
        raise ValueError("no rows to score")
    return rows


def _classes(outputs: Sequence[Output], labels: Sequence[Label]) -> list[Label]:
    """Sorted classes among labels and predictions: index 1 is the positive class."""
    classes = sorted(set(labels) | {o["prediction"] for o in outputs if o is not None})
    if len(classes) < 2:
        raise ValueError(f"need at least two classes among labels and predictions, got {classes}")
    return classes


def _accuracy_row(output: Output, label: Label) -> float:
    return 0.0 if output is None else float(output["prediction"] == label)


def _accuracy(outputs: Sequence[Output], labels: Sequence[Label]) -> float:
    return float(np.mean([_accuracy_row(o, y) for o, y in _rows(outputs, labels)]))


def _f1(outputs: Sequence[Output], labels: Sequence[Label]) -> float:
    """Binary F1 of the second sorted class, or macro F1 over all classes when there are
    more than two. A failed row predicts no class: a miss for its true class."""
    rows = _rows(outputs, labels)
    code = {c: i for i, c in enumerate(_classes(outputs, labels))}
    y_true = [code[y] for _, y in rows]
    y_pred = [-1 if o is None else code[o["prediction"]] for o, _ in rows]
    scored = [1] if len(code) == 2 else list(range(len(code)))
    return float(f1_score(y_true, y_pred, labels=scored, average="macro", zero_division=0.0))


def _probability(output: Mapping[str, Any]) -> float:
    """The positive-class probability, NaN when it is not a probability."""
    if "score" not in output:
        raise ValueError("this metric needs binary-classifier outputs with a 'score'")
    p = float(output["score"])
    return p if 0.0 <= p <= 1.0 else math.nan


def _binary_targets(outputs: Sequence[Output], labels: Sequence[Label]
                    ) -> tuple[FloatArray, FloatArray]:
    """(1{label is the positive class}, probability) per row; failed rows get the worst
    probability, all of it on the wrong class."""
    rows = _rows(outputs, labels)
    classes = _classes(outputs, labels)
    if len(classes) != 2:
        raise ValueError(f"needs a binary problem, got classes {classes}")
    y = np.array([label == classes[1] for _, label in rows], dtype=np.float64)
    p = np.array([math.nan if o is None else _probability(o) for o, _ in rows])
    failed = np.isnan(p)
    p[failed] = 1.0 - y[failed]
    return y, p


def _row_target(output: Output, label: Label) -> tuple[float, float] | None:
    """(1{label is the positive class}, probability) for one row; None when it failed.

    One row does not say which class is positive, but the output does: a binary
    classifier predicts the positive class exactly when its score exceeds 1/2 (at 1/2
    either reading gives the same Brier and log loss), so the label is positive iff
    "label == prediction" agrees with "score > 1/2". This matches the aggregate's sorted
    classes whenever the prediction is the classifier's most probable class.
    """
    if output is None:
        return None
    p = _probability(output)
    if math.isnan(p):
        return None
    return float((output["prediction"] == label) == (p > 0.5)), p


def _roc_auc(outputs: Sequence[Output], labels: Sequence[Label]) -> float:
    return float(roc_auc_score(*_binary_targets(outputs, labels)))


def _brier_row(output: Output, label: Label) -> float:
    target = _row_target(output, label)
    return -1.0 if target is None else -((target[1] - target[0]) ** 2)


def _log_likelihood(y: FloatArray, p: FloatArray) -> FloatArray:
    """Clipped log probability given to the true class (the negated log loss)."""
    p_true = np.clip(np.where(y == 1.0, p, 1.0 - p), LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return np.asarray(np.log(p_true), dtype=np.float64)


def _log_loss(outputs: Sequence[Output], labels: Sequence[Label]) -> float:
    """Mean binary log loss; equals scikit-learn's ``log_loss`` whenever no probability is
    within 1e-6 of 0 or 1 (it clips at float precision, this at :data:`LOG_LOSS_EPS`)."""
    return float(-np.mean(_log_likelihood(*_binary_targets(outputs, labels))))


def _log_likelihood_row(output: Output, label: Label) -> float:
    target = _row_target(output, label)
    y, p = (0.0, 1.0) if target is None else target
    return float(_log_likelihood(np.array([y]), np.array([p]))[0])


_CLASSIFICATION = {
    m.name: m
    for m in (
        # Per row: 1 when right, 0 when wrong or failed.
        Metric("accuracy", True, _accuracy, _accuracy_row, 0.0, 1.0),
        # Per row: F1 has no per-row form; the gate tests it with PairedF1 instead.
        Metric("f1", True, _f1, _accuracy_row, 0.0, 1.0),
        # Per row: minus the Brier error (p - 1{positive})^2, a proper score for the same
        # probabilities that AUC ranks; -1 for a failed row. Refused online.
        Metric("roc_auc", True, _roc_auc, _brier_row, -1.0, 0.0, online_refusal=(
            "ROC AUC ranks pairs of requests and is not a mean over requests, so the online "
            "gate has no valid sequential test of it; gate on 'log_loss' (a proper score of "
            "the same probabilities), 'f1' or 'accuracy'")),
        # Per row: the clipped log likelihood, in [ln 1e-6, ln(1 - 1e-6)].
        Metric("log_loss", False, _log_loss, _log_likelihood_row,
               math.log(LOG_LOSS_EPS), math.log1p(-LOG_LOSS_EPS)),
    )
}


# --- regression ----------------------------------------------------------------------


def _abs_error(output: Output, label: Label) -> float:
    """Absolute error of one row; inf for a failed row or a non-finite prediction."""
    if output is None:
        return math.inf
    error = abs(float(output["prediction"]) - float(label))
    return error if math.isfinite(error) else math.inf


def _regression(name: str, error_clip: float | None) -> Metric:
    """RMSE or MAE. The aggregate is the plain metric, except that a failed row counts as
    an error of ``error_clip``; per row it is minus the squared (RMSE) or absolute (MAE)
    error clipped at ``error_clip``, in ``[-error_clip**2, 0]`` or ``[-error_clip, 0]``."""
    if error_clip is None or not (math.isfinite(error_clip) and error_clip > 0.0):
        raise ValueError(f"{name} needs error_clip=, a finite error > 0 in label units beyond "
                         f"which a row counts as simply wrong, got {error_clip!r}")
    clip = error_clip
    power = 2 if name == "rmse" else 1

    def aggregate(outputs: Sequence[Output], labels: Sequence[Label]) -> float:
        errors = np.array([_abs_error(o, y) for o, y in _rows(outputs, labels)])
        errors[np.isinf(errors)] = clip
        return float(np.mean(errors**power) ** (1.0 / power))

    def per_row(output: Output, label: Label) -> float:
        return -(min(_abs_error(output, label), clip) ** power)

    return Metric(name, False, aggregate, per_row, -(clip**power), 0.0)


# --- custom --------------------------------------------------------------------------


def _import(spec: str) -> Callable[[Sequence[Output], Sequence[Label]], float]:
    module, _, attribute = spec.partition(":")
    fn = getattr(importlib.import_module(module), attribute, None)
    if not callable(fn):
        raise ValueError(f"{spec!r} does not name a function")
    return fn  # type: ignore[no-any-return]


def _custom(name: str, fn: Callable[[Sequence[Output], Sequence[Label]], float],
            higher_is_better: bool, bounds: tuple[float, float]) -> Metric:
    sign = 1.0 if higher_is_better else -1.0
    low, high = sorted((sign * bounds[0], sign * bounds[1]))

    def aggregate(outputs: Sequence[Output], labels: Sequence[Label]) -> float:
        return float(fn(outputs, labels))

    def per_row(output: Output, label: Label) -> float:
        value = sign * float(fn([output], [label]))
        if not low <= value <= high:  # also catches NaN
            raise ValueError(f"metric {name!r} scored one row {sign * value}, outside its "
                             f"declared bounds {bounds}")
        return value

    return Metric(name, higher_is_better, aggregate, per_row, low, high)
