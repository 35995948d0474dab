"""The gate and the rollback watch on real predictions: their error rates against alpha.

A logistic regression on two columns of river's bundled Shuttle data (f3, f5) is a
mediocre classifier of the rare class (F1 about 0.5), which is what these defects need:
thresholds of its scores give champions and candidates with chosen recalls and
accuracies. Streams are bootstrap draws of its held-out rows. Each test is one defect of
issue 13: F1 decided on accuracy, outcome-dependent label delay, a rollback without error
control.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from driftloop.evaluation import (
    ConfidenceSequence,
    GateConfig,
    LabelHorizon,
    RollbackWatch,
    ShadowGate,
    label_share,
    labelled_share_by_prediction,
    metric,
)

ALPHA = 0.05
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]


def accuracy_score(y: Ints, pred: Bools) -> float:
    return float(np.mean(pred == (y == 1)))


def recall_score(y: Ints, pred: Bools) -> float:
    return float(np.sum(pred & (y == 1)) / np.sum(y == 1))


def f1_score(y: Ints, pred: Bools) -> float:
    tp = np.sum(pred & (y == 1))
    return float(2 * tp / (np.sum(pred) + np.sum(y == 1)))


@dataclass(frozen=True)
class Scored:
    """Held-out Shuttle rows: the rare-class label and the model's score."""

    y: npt.NDArray[np.int64]
    score: npt.NDArray[np.float64]

    def subsample_positives(self, share: float, rng: np.random.Generator) -> Scored:
        pos, neg = np.flatnonzero(self.y == 1), np.flatnonzero(self.y == 0)
        keep = rng.choice(pos, round(share / (1 - share) * neg.size), replace=False)
        rows = np.concatenate([neg, keep])
        return Scored(self.y[rows], self.score[rows])

    def threshold_for(self, fn: object, target: float) -> float:
        """The threshold whose predictions bring ``fn(y, pred)`` closest to ``target``."""
        grid = np.quantile(self.score, np.linspace(0.5, 0.999, 400))
        values = [fn(self.y, self.score > t) for t in grid]  # type: ignore[operator]
        return float(grid[int(np.argmin(np.abs(np.array(values) - target)))])


@pytest.fixture(scope="module")
def scored() -> Scored:
    from river.datasets import Shuttle  # noqa: PLC0415 - heavy import, only here

    rows = list(Shuttle())
    x = pd.DataFrame([r for r, _ in rows])[["f3", "f5"]].to_numpy(float)
    y = np.array([int(v) for _, v in rows])
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x[::2], y[::2])
    return Scored(y[1::2], model.predict_proba(x[1::2])[:, 1])


def outputs(pred: Bools) -> list[dict[str, int]]:
    return [{"prediction": int(p)} for p in pred]


# --- F1 at 2 % positives --------------------------------------------------------------


def first_verdict(gate: ShadowGate, y: npt.NDArray[np.int64], champion: Bools,
                  candidate: Bools, chunk: int = 250) -> str:
    pairs = gate.paired_scores()
    for start in range(0, y.size, chunk):
        part = slice(start, start + chunk)
        pairs.extend(outputs(champion[part]), outputs(candidate[part]), y[part].tolist())
        decision = gate.decide(pairs, elapsed_s=1.0)
        if decision.verdict != "continue":
            assert decision.evidence["metric"] == "f1"
            assert "on f1" in decision.reason
            return decision.verdict
    return "continue"


@pytest.mark.slow
def test_f1_gate_never_promotes_an_always_negative_candidate(scored: Scored) -> None:
    """Decided on per-row accuracy, the always-negative candidate (F1 0) beat a champion
    with F1 about 0.5 in every run: it is right on the 98 % negatives."""
    rng = np.random.default_rng(0)
    rare = scored.subsample_positives(0.02, rng)
    champion = rare.score > rare.threshold_for(accuracy_score, 0.97)
    assert 0.35 < f1_score(rare.y, champion) < 0.6
    assert accuracy_score(rare.y, champion) < 0.98  # an always-negative model is "better"
    gate = ShadowGate(GateConfig(metric="f1", min_samples=200, alpha=ALPHA))
    verdicts = []
    for _ in range(30):
        rows = rng.integers(0, rare.y.size, 12_000)
        verdicts.append(first_verdict(gate, rare.y[rows], champion[rows],
                                      np.zeros(rows.size, dtype=bool), chunk=500))
    assert verdicts.count("promote") == 0
    assert verdicts.count("reject") >= 28  # and it is caught, not left undecided


def test_f1_gate_promotes_a_candidate_with_better_f1(scored: Scored) -> None:
    rng = np.random.default_rng(1)
    rare = scored.subsample_positives(0.02, rng)
    champion = rare.score > rare.threshold_for(f1_score, 0.3)
    rows = rng.integers(0, rare.y.size, 20_000)
    perfect = rare.y[rows] == 1  # an oracle: F1 1
    gate = ShadowGate(GateConfig(metric="f1", min_samples=200, alpha=ALPHA))
    assert first_verdict(gate, rare.y[rows], champion[rows], perfect) == "promote"


def test_roc_auc_is_refused_for_the_online_gate_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"GateConfig.metric .roc_auc.*log_loss"):
        GateConfig(metric="roc_auc")


# --- outcome-dependent label delay ----------------------------------------------------

DELAY_NEGATIVE, DELAY_POSITIVE = 100, 10_100  # requests until the label arrives
STREAM = 30_000
DECIDE_EVERY = 500
MIN_DELTA = 0.005  # a promotion is an error: the candidate is not better by this much


def delayed_run(y: npt.NDArray[np.int64], champion: Bools, candidate: Bools,
                horizon: float | None) -> str:
    """Requests at times 0, 1, 2, ...; labels arrive after a delay set by the outcome; the
    gate reads the newly labelled rows every DECIDE_EVERY requests."""
    gate = ShadowGate(GateConfig(min_samples=200, alpha=ALPHA, min_delta=MIN_DELTA))
    pairs = gate.paired_scores()
    arrival = np.arange(y.size) + np.where(y == 1, DELAY_POSITIVE, DELAY_NEGATIVE)
    order = np.argsort(arrival, kind="stable")
    buffer = LabelHorizon(horizon) if horizon is not None else None
    seen = 0
    for now in range(DECIDE_EVERY, y.size + DELAY_POSITIVE, DECIDE_EVERY):
        upto = int(np.searchsorted(arrival[order], now, side="right"))
        new = order[seen:upto]
        seen = upto
        a, b, labels = outputs(champion[new]), outputs(candidate[new]), y[new].tolist()
        if buffer is not None:
            buffer.add(new.astype(float).tolist(), a, b, labels)
            a, b, labels = buffer.release(float(now))
        pairs.extend(a, b, labels)
        decision = gate.decide(pairs, elapsed_s=1.0)
        if decision.verdict != "continue":
            return decision.verdict
    return "continue"


@pytest.fixture(scope="module")
def recall_pair(scored: Scored) -> tuple[Bools, Bools]:
    """A champion with recall 0.70 and a candidate of exactly its accuracy and recall 0.52:
    the champion's predictions with 18 points of its true positives turned negative, and
    as many of its false positives turned negative too (fewer false alarms, more misses)."""
    rng = np.random.default_rng(7)
    champion = scored.score > scored.threshold_for(recall_score, 0.70)
    k = round((recall_score(scored.y, champion) - 0.52) * int(np.sum(scored.y == 1)))
    candidate = champion.copy()
    candidate[rng.choice(np.flatnonzero(champion & (scored.y == 1)), k, replace=False)] = False
    candidate[rng.choice(np.flatnonzero(champion & (scored.y == 0)), k, replace=False)] = False
    assert accuracy_score(scored.y, candidate) == accuracy_score(scored.y, champion)
    assert abs(recall_score(scored.y, candidate) - 0.52) < 0.005
    return champion, candidate


@pytest.mark.slow
@pytest.mark.parametrize("horizon", [None, float(DELAY_POSITIVE + DECIDE_EVERY)])
def test_label_delay_by_outcome_and_the_label_horizon(
    scored: Scored, recall_pair: tuple[Bools, Bools], horizon: float | None
) -> None:
    """Positives labelled 10,000 requests after negatives: pairing labels as they arrive
    judges the models on negatives first and promotes the lower-recall candidate; a
    horizon longer than the slowest label brings promotions back under alpha / 2."""
    champion, candidate = recall_pair
    rng = np.random.default_rng(2)
    verdicts = []
    for _ in range(25):
        rows = rng.integers(0, scored.y.size, STREAM)
        verdicts.append(delayed_run(scored.y[rows], champion[rows], candidate[rows], horizon))
    promoted = verdicts.count("promote") / len(verdicts)
    if horizon is None:
        assert promoted > 0.5  # the defect, reproduced
    else:
        assert promoted <= ALPHA / 2


def test_label_share_by_predicted_class_flags_the_delay(
    scored: Scored, recall_pair: tuple[Bools, Bools]
) -> None:
    champion, _ = recall_pair
    rng = np.random.default_rng(3)
    rows = rng.integers(0, scored.y.size, 20_000)
    y, predicted = scored.y[rows], champion[rows]
    now = rows.size
    age = now - np.arange(rows.size)
    labelled = age >= np.where(y == 1, DELAY_POSITIVE, DELAY_NEGATIVE)
    recent = age < DELAY_POSITIVE  # the requests whose labels may still be out
    counts = {c: int(np.sum(recent & (predicted == c))) for c in (False, True)}
    done = {c: int(np.sum(recent & labelled & (predicted == c))) for c in (False, True)}
    share = label_share(counts, done)
    assert share.diverging and share.shares[True] < share.shares[False]
    assert "depending on the outcome" in share.describe()
    even = {c: int(0.9 * counts[c]) for c in counts}
    assert not label_share(counts, even).diverging


def test_labelled_share_by_prediction_reads_outputs() -> None:
    outputs = [{"prediction": c} for c in [0] * 300 + [1] * 300] + [None] * 10
    late = [True] * 300 + [i % 3 == 0 for i in range(300)] + [True] * 10  # 1s a third
    share = labelled_share_by_prediction(outputs, late)
    assert share is not None and share.diverging and share.shares[1] < share.shares[0]
    assert share.to_dict()["shares"] == {"0": 1.0, "1": 0.3333333333333333, "None": 1.0}
    even = labelled_share_by_prediction(outputs, [i % 2 == 0 for i in range(610)])
    assert even is not None and not even.diverging
    regressor = [{"prediction": i / 7} for i in range(100)]
    assert labelled_share_by_prediction(regressor, [True] * 100) is None
    assert labelled_share_by_prediction([], []) is None


# --- the rollback watch ---------------------------------------------------------------


def watch_verdict(baseline_right: Bools, live_right: Bools, tolerance: float) -> str:
    accuracy = metric("accuracy")
    base = RollbackWatch.baseline_sequence(accuracy, ALPHA)
    base.extend(baseline_right.astype(float))
    watch = RollbackWatch(accuracy, ALPHA, tolerance, (base.lower, base.upper),
                          min_samples=200)
    for start in range(0, live_right.size, 250):
        part = live_right[start:start + 250]
        watch.extend(outputs(part), [1] * part.size)
        decision = watch.decide()
        if decision.verdict != "continue":
            return decision.verdict
    return "continue"


@pytest.mark.slow
def test_rollback_watch_error_rates_against_alpha(scored: Scored) -> None:
    """An equally good new champion is rolled back at most alpha of the time; one 0.03
    worse (in accuracy) is caught."""
    rng = np.random.default_rng(4)
    good = scored.score > scored.threshold_for(f1_score, 0.55)
    right = good == (scored.y == 1)
    worse = right.copy()
    flip = rng.choice(np.flatnonzero(right), int(0.03 * right.size), replace=False)
    worse[flip] = False
    equal, caught = [], []
    for _ in range(60):
        baseline = right[rng.integers(0, right.size, 10_000)]
        equal.append(watch_verdict(baseline, right[rng.integers(0, right.size, 15_000)], 0.0))
        caught.append(watch_verdict(baseline, worse[rng.integers(0, right.size, 15_000)], 0.0))
    assert equal.count("rollback") / len(equal) <= ALPHA
    assert caught.count("rollback") / len(caught) >= 0.9


def test_baseline_sequence_is_the_gate_machinery() -> None:
    sequence = RollbackWatch.baseline_sequence(metric("accuracy"), ALPHA)
    assert isinstance(sequence, ConfidenceSequence) and sequence.alpha == ALPHA
