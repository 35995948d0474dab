"""The ShadowGate: its calibration under continuous monitoring, and each branch of the rule."""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from driftloop.evaluation import (
    GateConfig,
    PairedScores,
    PairedSummary,
    ShadowGate,
    metric,
)

RIGHT, WRONG = {"prediction": 1}, {"prediction": 0}  # outputs for a row labelled 1

# --- calibration ---------------------------------------------------------------------

CHAMPION_ACCURACY = 0.8
SHARED = 0.9  # chance a row's difficulty is shared: the models then agree on ~93% of rows
STREAMS = 200
LENGTH = 5000


def correctness(candidate_accuracy: float, seed: int
                ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(champion right, candidate right) per labelled request, for STREAMS streams.

    Each row has a latent difficulty u ~ U(0, 1); the champion is right when
    u < CHAMPION_ACCURACY. The candidate sees the same u with probability SHARED (else a
    fresh one) and is right when it is below its own accuracy, so both marginal
    accuracies are exact and the two models agree on most rows, as a retrained model does.
    """
    rng = np.random.default_rng(seed)
    shape = (STREAMS, LENGTH)
    difficulty = rng.random(shape)
    own = np.where(rng.random(shape) < SHARED, difficulty, rng.random(shape))
    return difficulty < CHAMPION_ACCURACY, own < candidate_accuracy


def first_decision(gate: ShadowGate, deltas: npt.NDArray[np.float64]) -> tuple[str, int]:
    """The gate's first non-"continue" verdict on a stream and the label it came at,
    checking after every label, or ("continue", LENGTH) when none came.

    The sequence's bounds for the whole stream come from one vectorised ``extend``. With
    no failures and no clock, the verdict can only move from "continue" to a decision and
    stay there (the bounds only tighten and n only grows), so the first decisive label is
    found by bisection, asking the real ``decide`` about ~13 snapshots instead of 5000.
    ``test_replay_matches_label_by_label`` checks this against the plain loop.
    """
    path = gate.paired_scores().sequence.extend(deltas)

    def verdict(t: int) -> str:
        summary = PairedSummary(gate.metric.name, gate.config.alpha, t, float(path.mean[t - 1]),
                                float(path.lower[t - 1]), float(path.upper[t - 1]), 0, 0)
        return gate.decide(summary, elapsed_s=0.0).verdict

    t = bisect.bisect_left(range(1, deltas.size + 1), True, key=lambda t: verdict(t) != "continue")
    return ("continue", deltas.size) if t == deltas.size else (verdict(t + 1), t + 1)


def run_streams(candidate_accuracy: float, min_delta: float, seed: int
                ) -> tuple[dict[str, float], float]:
    """Share of streams ending in each verdict, and the median labels to a decision."""
    gate = ShadowGate(GateConfig(min_delta=min_delta, alpha=0.05, min_samples=200))
    champion, candidate = correctness(candidate_accuracy, seed)
    results = [first_decision(gate, d) for d in candidate.astype(float) - champion]
    verdicts = [v for v, _ in results]
    shares = {v: verdicts.count(v) / STREAMS for v in ("promote", "reject", "continue")}
    decided = [t for v, t in results if v != "continue"]
    return shares, float(np.median(decided)) if decided else math.nan


@pytest.mark.parametrize("min_delta", [0.02, 0.0])
def test_equal_candidate_is_rarely_promoted(min_delta: float) -> None:
    """A candidate exactly as good as the champion, watched after every label for up to
    5000: promoted in at most alpha of streams. min_delta = 0 is the hard case, with the
    truth sitting on the boundary for the whole stream (the bound is alpha / 2 there)."""
    shares, median = run_streams(CHAMPION_ACCURACY, min_delta, seed=101)
    assert shares["promote"] <= 0.05, (shares, median)


def test_better_candidate_is_promoted() -> None:
    """Better by 2 * min_delta: promoted in at least 90% of streams, never rejected."""
    shares, median = run_streams(CHAMPION_ACCURACY + 0.04, 0.02, seed=202)
    assert shares["promote"] >= 0.9, f"{shares}, median labels to a decision {median}"
    assert shares["reject"] == 0.0, shares


def test_worse_candidate_is_rejected() -> None:
    shares, median = run_streams(CHAMPION_ACCURACY - 0.04, 0.02, seed=303)
    assert shares["reject"] >= 0.9, f"{shares}, median labels to a decision {median}"
    assert shares["promote"] == 0.0, shares


@pytest.mark.parametrize(("candidate_accuracy", "stream"), [(0.84, 0), (0.76, 1), (0.8, 2)])
def test_replay_matches_label_by_label(candidate_accuracy: float, stream: int) -> None:
    """The bisection replay above gives the same verdict, at the same label, as feeding
    real outputs to PairedScores one at a time and asking the gate after each."""
    gate = ShadowGate(GateConfig(min_delta=0.02, min_samples=200))
    champion, candidate = (c[stream] for c in correctness(candidate_accuracy, seed=404))
    expected = first_decision(gate, candidate.astype(float) - champion)
    pairs = gate.paired_scores()
    for t, (champion_right, candidate_right) in enumerate(zip(champion, candidate,
                                                              strict=True), start=1):
        pairs.add(RIGHT if champion_right else WRONG, RIGHT if candidate_right else WRONG, 1)
        decision = gate.decide(pairs, elapsed_s=0.0)
        if decision.verdict != "continue":
            assert (decision.verdict, t) == expected
            return
    assert expected == ("continue", LENGTH)


# --- the rule, branch by branch ------------------------------------------------------


def fed(gate: ShadowGate, candidate_wrong_every: int, n: int, *, candidate_fails_every: int = 0,
        champion_fails_every: int = 0) -> PairedScores:
    """Pairs where the champion is always right unless it fails, and the candidate is
    wrong on every k-th row, failing on every j-th."""
    pairs = gate.paired_scores()
    for i in range(n):
        champion = None if champion_fails_every and i % champion_fails_every == 0 else RIGHT
        candidate: Any = RIGHT
        if candidate_fails_every and i % candidate_fails_every == 0:
            candidate = None
        elif candidate_wrong_every and i % candidate_wrong_every == 0:
            candidate = WRONG
        pairs.add(champion, candidate, 1)
    return pairs


def test_no_verdict_before_min_samples_and_then_promote() -> None:
    gate = ShadowGate(GateConfig(min_samples=300))
    pairs = gate.paired_scores()
    for _ in range(299):
        pairs.add(WRONG, RIGHT, 1)
    early = gate.decide(pairs, elapsed_s=10.0)
    assert early.verdict == "continue" and early.evidence["lower"] > 0.5
    pairs.add(WRONG, RIGHT, 1)
    decision = gate.decide(pairs, elapsed_s=10.0)
    assert decision.verdict == "promote"
    assert "beats the champion on accuracy" in decision.reason
    assert decision.evidence == {
        "metric": "accuracy", "n": 300, "mean_delta": 1.0, "lower": pairs.lower,
        "upper": 1.0, "min_delta": 0.0, "alpha": 0.05, "candidate_failures": 0,
        "champion_failures": 0, "elapsed_s": 10.0, "units": "per request",
    }


def test_reject_when_the_candidate_cannot_reach_min_delta() -> None:
    gate = ShadowGate(GateConfig(min_delta=0.05))
    decision = gate.decide(fed(gate, candidate_wrong_every=0, n=2000), elapsed_s=1.0)
    assert decision.verdict == "reject"
    assert "cannot beat the champion" in decision.reason
    assert decision.evidence["upper"] < 0.05


def test_error_rate_guardrail() -> None:
    gate = ShadowGate(GateConfig(min_samples=200))
    # Candidate fails on 5% of rows, the champion never: 5% > 1.5 * 0% + 1%.
    failing = fed(gate, 0, 400, candidate_fails_every=20)
    decision = gate.decide(failing, elapsed_s=1.0)
    assert decision.verdict == "reject" and "failed on 5.0%" in decision.reason
    assert decision.evidence["candidate_failures"] == 20
    # Champion fails on 4%: 5% <= 1.5 * 4% + 1%, so the guardrail lets it through.
    both = fed(gate, 0, 400, candidate_fails_every=20, champion_fails_every=25)
    assert both.champion_failures == 16
    assert gate.decide(both, elapsed_s=1.0).verdict == "continue"
    # Before min_samples the guardrail waits too.
    assert gate.decide(fed(gate, 0, 100, candidate_fails_every=20), 1.0).verdict == "continue"


def test_inconclusive_after_max_duration() -> None:
    gate = ShadowGate(GateConfig(max_duration_s=600.0))
    pairs = fed(gate, candidate_wrong_every=0, n=50)
    assert gate.decide(pairs, elapsed_s=599.0).verdict == "continue"
    decision = gate.decide(pairs, elapsed_s=600.0)
    assert decision.verdict == "reject" and decision.reason.startswith("inconclusive")
    empty = gate.decide(gate.paired_scores(), elapsed_s=0.0)
    assert empty.verdict == "continue" and empty.evidence["mean_delta"] is None


def test_decide_refuses_pairs_scored_differently() -> None:
    gate = ShadowGate(GateConfig(alpha=0.05))
    with pytest.raises(ValueError, match=r"alpha 0\.1"):
        gate.decide(PairedScores("accuracy", alpha=0.1), elapsed_s=0.0)
    with pytest.raises(ValueError, match="'f1'"):
        gate.decide(PairedScores("f1", alpha=0.05), elapsed_s=0.0)


def test_paired_differences_use_the_metric_range() -> None:
    pairs = PairedScores(metric("mae", error_clip=4.0), alpha=0.05)
    assert (pairs.lower, pairs.upper) == (-4.0, 4.0)
    pairs.extend([{"prediction": 0.0}, None], [{"prediction": 1.0}, {"prediction": 9.0}],
                 [1.0, 1.0])
    assert pairs.n == 2 and pairs.mean == pytest.approx((1.0 + 0.0) / 2)
    assert (pairs.champion_failures, pairs.candidate_failures) == (1, 0)


@pytest.mark.parametrize(("field", "value"), [
    ("min_delta", math.nan), ("alpha", 1.0), ("min_samples", 0), ("max_duration_s", 0.0),
    ("max_error_rate_ratio", 0.0), ("error_rate_slack", -0.1), ("max_latency_ratio", -1.0),
    ("holdout_tolerance", -0.01), ("metric", "precision"),
])
def test_config_validation_names_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"GateConfig.{field}"):
        GateConfig(**{field: value})


# --- holdout and latency -------------------------------------------------------------


def test_offline_accuracy() -> None:
    gate = ShadowGate()
    labels = [1] * 100
    champion = [RIGHT] * 80 + [WRONG] * 20
    candidate = [RIGHT] * 90 + [None] * 10
    result = gate.offline(champion, candidate, labels)
    assert (result.champion, result.candidate) == pytest.approx((0.8, 0.9))
    assert result.delta == pytest.approx(0.1)
    assert result.passed and result.n == 100 and result.candidate_failures == 10
    assert result.lower <= 0.1 <= result.upper
    assert "candidate 0.9, champion 0.8" in result.reason
    worse = gate.offline(candidate, champion, labels)
    assert not worse.passed and worse.delta == pytest.approx(-0.1)


def test_offline_orients_lower_is_better_metrics_and_applies_tolerance() -> None:
    labels = [0.0, 0.0, 0.0, 0.0]
    champion = [{"prediction": 2.0}] * 4
    candidate = [{"prediction": 2.1}] * 4
    strict = ShadowGate(GateConfig(metric=metric("rmse", error_clip=5.0)))
    result = strict.offline(champion, candidate, labels)
    assert (result.champion, result.candidate) == pytest.approx((2.0, 2.1))
    assert result.delta == pytest.approx(-0.1) and not result.passed
    lenient = ShadowGate(GateConfig(metric=metric("rmse", error_clip=5.0),
                                    holdout_tolerance=0.15))
    assert lenient.offline(champion, candidate, labels).passed
    better = strict.offline(candidate, champion, labels)
    assert better.delta == pytest.approx(0.1) and better.passed


def test_latency_guard() -> None:
    gate = ShadowGate(GateConfig(max_latency_ratio=1.5))
    ok, reason = gate.latency_guard(0.010, 0.014)
    assert ok and "1.40x" in reason
    ok, reason = gate.latency_guard(0.010, 0.016)
    assert not ok and "above the 1.5x limit" in reason
    with pytest.raises(ValueError, match="champion_p95_s"):
        gate.latency_guard(0.0, 0.01)
    with pytest.raises(ValueError, match="candidate_p95_s"):
        gate.latency_guard(0.01, math.nan)
