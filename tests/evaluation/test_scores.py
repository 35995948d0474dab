"""Metrics: aggregates held to scikit-learn on random data, per-row scores to their range."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from driftloop.evaluation import BUILTIN_METRICS, Metric, metric
from driftloop.evaluation.scores import LOG_LOSS_EPS

RNG_SEED = 42
N = 500


def classifier_outputs(labels: Sequence[Any], seed: int = RNG_SEED
                       ) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Binary-classifier outputs as a served model returns them: the score is the
    probability of the second sorted class and the prediction its argmax class."""
    classes = sorted(set(labels))
    rng = np.random.default_rng(seed)
    truth = np.array([lab == classes[1] for lab in labels])
    scores = np.clip(0.5 * truth + rng.uniform(0.0, 0.7, len(labels)) - 0.1, 0.01, 0.99)
    outputs = [{"prediction": classes[int(s > 0.5)], "score": float(s)} for s in scores]
    return outputs, scores


def binary_labels(seed: int = RNG_SEED) -> list[str]:
    return np.random.default_rng(seed).choice(["no", "yes"], size=N).tolist()


def test_accuracy_matches_sklearn() -> None:
    rng = np.random.default_rng(RNG_SEED)
    labels = rng.choice(["a", "b", "c"], size=N).tolist()
    predictions = rng.choice(["a", "b", "c"], size=N).tolist()
    outputs = [{"prediction": p} for p in predictions]
    assert metric("accuracy").aggregate(outputs, labels) == pytest.approx(
        skm.accuracy_score(labels, predictions))


@pytest.mark.parametrize("classes", [[0, 1], ["neg", "pos"], ["a", "b", "c", "d"]])
def test_f1_matches_sklearn(classes: list[Any]) -> None:
    rng = np.random.default_rng(RNG_SEED)
    labels = rng.choice(classes, size=N).tolist()
    predictions = [lab if rng.random() < 0.6 else classes[rng.integers(len(classes))]
                   for lab in labels]
    outputs = [{"prediction": p} for p in predictions]
    if len(classes) == 2:
        expected = skm.f1_score(labels, predictions, pos_label=sorted(classes)[1])
    else:
        expected = skm.f1_score(labels, predictions, average="macro")
    assert metric("f1").aggregate(outputs, labels) == pytest.approx(expected)


def test_f1_counts_a_failed_row_as_a_miss_for_its_class() -> None:
    labels = ["no", "yes", "yes", "no"]
    outputs = [{"prediction": "no"}, {"prediction": "yes"}, None, None]
    # positive class "yes": tp = 1, fn = 1 (the failed "yes" row), fp = 0.
    assert metric("f1").aggregate(outputs, labels) == pytest.approx(2 / 3)


def test_roc_auc_and_log_loss_match_sklearn() -> None:
    labels = binary_labels()
    outputs, scores = classifier_outputs(labels)
    truth = np.array(labels) == "yes"
    assert metric("roc_auc").aggregate(outputs, labels) == pytest.approx(
        skm.roc_auc_score(truth, scores))
    assert metric("log_loss").aggregate(outputs, labels) == pytest.approx(
        skm.log_loss(labels, scores))


def test_rmse_and_mae_match_sklearn() -> None:
    rng = np.random.default_rng(RNG_SEED)
    labels = rng.normal(10.0, 3.0, N)
    predictions = labels + rng.normal(0.0, 1.0, N)
    outputs = [{"prediction": float(p)} for p in predictions]
    rmse, mae = metric("rmse", error_clip=5.0), metric("mae", error_clip=5.0)
    assert rmse.aggregate(outputs, labels.tolist()) == pytest.approx(
        math.sqrt(skm.mean_squared_error(labels, predictions)))
    assert mae.aggregate(outputs, labels.tolist()) == pytest.approx(
        skm.mean_absolute_error(labels, predictions))
    assert not rmse.higher_is_better and not mae.higher_is_better


def test_per_row_scores_agree_with_their_aggregate_where_it_is_a_mean() -> None:
    """Accuracy, log loss and MAE are means over rows, so the per-row scores must average
    to the aggregate; roc_auc's per-row score is minus the Brier error. This also checks
    that per_row finds the positive class from one output as the aggregate does."""
    labels = binary_labels()
    outputs, scores = classifier_outputs(labels)
    truth = np.array(labels) == "yes"

    def mean_row(name: str) -> float:
        m = metric(name)
        return float(np.mean([m.per_row(o, y) for o, y in zip(outputs, labels, strict=True)]))

    assert mean_row("accuracy") == pytest.approx(metric("accuracy").aggregate(outputs, labels))
    assert mean_row("f1") == pytest.approx(metric("accuracy").aggregate(outputs, labels))
    assert -mean_row("log_loss") == pytest.approx(metric("log_loss").aggregate(outputs, labels))
    assert -mean_row("roc_auc") == pytest.approx(skm.brier_score_loss(truth, scores))

    values = [1.0, 2.0, 4.0]
    regression = [{"prediction": 1.5}, {"prediction": 2.0}, {"prediction": 10.0}]
    mae = metric("mae", error_clip=100.0)
    assert -np.mean([mae.per_row(o, y) for o, y in zip(regression, values, strict=True)]) \
        == pytest.approx(mae.aggregate(regression, values))


def test_regression_per_row_is_clipped() -> None:
    rmse, mae = metric("rmse", error_clip=2.0), metric("mae", error_clip=2.0)
    assert rmse.per_row({"prediction": 1.0}, 2.0) == -1.0
    assert rmse.per_row({"prediction": 10.0}, 2.0) == -4.0
    assert mae.per_row({"prediction": 10.0}, 2.0) == -2.0
    assert (rmse.low, rmse.high, mae.low, mae.high) == (-4.0, 0.0, -2.0, 0.0)


@pytest.mark.parametrize("name", BUILTIN_METRICS)
def test_failed_and_garbage_outputs_score_worst_and_stay_in_range(name: str) -> None:
    m = metric(name, error_clip=3.0)
    classification = name not in ("rmse", "mae")
    label: Any = "yes" if classification else 1.0
    garbage: dict[str, list[Any]] = {
        "rmse": [{"prediction": math.nan}, {"prediction": math.inf}],
        "mae": [{"prediction": math.nan}, {"prediction": math.inf}],
        "roc_auc": [{"prediction": "yes", "score": math.nan}, {"prediction": "no", "score": 1.5}],
        "log_loss": [{"prediction": "yes", "score": -0.1}],
    }
    for output in [None, *garbage.get(name, [])]:
        assert m.per_row(output, label) == pytest.approx(m.low), output
    labels = binary_labels()
    outputs, _ = classifier_outputs(labels)
    if not classification:
        labels = [float(i % 7) for i in range(N)]
        outputs = [{"prediction": float(i % 5)} for i in range(N)]
    values = [m.per_row(o, y) for o, y in zip(outputs, labels, strict=True)]
    assert m.low <= min(values) <= max(values) <= m.high


def test_failed_rows_count_in_the_aggregate() -> None:
    labels = binary_labels()
    outputs, scores = classifier_outputs(labels)
    truth = (np.array(labels) == "yes").astype(float)
    failed = list(outputs)
    failed[:50] = [None] * 50
    worst = scores.copy()
    worst[:50] = 1.0 - truth[:50]  # all probability on the wrong class
    assert metric("roc_auc").aggregate(failed, labels) == pytest.approx(
        skm.roc_auc_score(truth, worst))
    assert metric("log_loss").aggregate(failed, labels) == pytest.approx(
        skm.log_loss(truth, np.clip(worst, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)))
    right = [{"prediction": y} for y in labels]
    assert metric("accuracy").aggregate([None, *right[1:]], labels) == pytest.approx(
        1 - 1 / N)
    rmse = metric("rmse", error_clip=2.0)
    assert rmse.aggregate([None, {"prediction": 0.0}], [5.0, 0.0]) == pytest.approx(
        math.sqrt(2.0))


def fraction_right(outputs: Sequence[Any], labels: Sequence[Any]) -> float:
    """A custom metric, importable as 'tests.evaluation.test_scores:fraction_right'."""
    return float(np.mean([o is not None and o["prediction"] == y
                          for o, y in zip(outputs, labels, strict=True)]))


def test_custom_metrics() -> None:
    by_name = metric("tests.evaluation.test_scores:fraction_right",
                     higher_is_better=True, bounds=(0.0, 1.0))
    assert by_name.name == "tests.evaluation.test_scores:fraction_right"
    outputs, labels = [{"prediction": 1}, None, {"prediction": 0}], [1, 1, 1]
    assert by_name.aggregate(outputs, labels) == pytest.approx(1 / 3)
    assert [by_name.per_row(o, y) for o, y in zip(outputs, labels, strict=True)] == [1, 0, 0]

    def miss_rate(outputs: Sequence[Any], labels: Sequence[Any]) -> float:
        return 1.0 - fraction_right(outputs, labels)

    lower_better = metric(miss_rate, higher_is_better=False, bounds=(0.0, 1.0))
    assert (lower_better.low, lower_better.high) == (-1.0, 0.0)
    assert lower_better.per_row({"prediction": 1}, 1) == 0.0
    assert lower_better.per_row(None, 1) == -1.0

    too_narrow = metric(miss_rate, higher_is_better=False, bounds=(0.0, 0.5))
    with pytest.raises(ValueError, match="outside its declared bounds"):
        too_narrow.per_row(None, 1)
    with pytest.raises(ValueError, match="higher_is_better= and bounds="):
        metric(miss_rate)
    with pytest.raises(ValueError, match="does not name a function"):
        metric("math:pi", higher_is_better=True, bounds=(0.0, 1.0))


def test_metric_resolution_errors() -> None:
    with pytest.raises(ValueError, match="accuracy, f1, roc_auc, log_loss, rmse, mae"):
        metric("precision")
    with pytest.raises(ValueError, match="error_clip"):
        metric("rmse")
    with pytest.raises(ValueError, match="error_clip"):
        metric("mae", error_clip=-1.0)
    with pytest.raises(ValueError, match="binary"):
        metric("roc_auc").aggregate([{"prediction": c, "score": 0.5} for c in "abc"],
                                    ["a", "b", "c"])
    with pytest.raises(ValueError, match="'score'"):
        metric("log_loss").per_row({"prediction": "a"}, "a")
    with pytest.raises(ValueError, match="no rows"):
        metric("accuracy").aggregate([], [])
    with pytest.raises(ValueError, match="low < high"):
        Metric("flat", True, fraction_right, lambda o, y: 0.0, 1.0, 1.0)
    built = metric("accuracy")
    assert metric(built) is built
