"""The ShadowGate: when a candidate model has earned the champion's place.

Two checks, in the order a retrain runs them:

1. :meth:`ShadowGate.offline` on the holdout split of the training snapshot: a cheap
   sanity check (the candidate's aggregate metric may not trail the champion's by more
   than ``holdout_tolerance``) before any live traffic is spent on it.
2. :meth:`ShadowGate.decide` on live shadow traffic: every labelled request scored by both
   models adds one paired difference ``d = per_row(candidate) - per_row(champion)`` to a
   :class:`PairedScores`. Pairing cancels the shared difficulty of each request, so the
   differences have far less variance than either model's scores, and a time-uniform
   confidence sequence on their mean lets the gate look after every label and stop as
   soon as the answer is clear, with error at most ``alpha`` however often it looks.

Rule, checked in this order once ``min_samples`` pairs are in:

- **reject** when the candidate's failure rate exceeds ``max_error_rate_ratio`` times the
  champion's plus ``error_rate_slack`` (a safety veto on point estimates, not a test);
- **promote** when the lower bound on the mean difference exceeds ``min_delta``: the
  candidate is better by more than ``min_delta`` (wrongly at most ``alpha / 2`` of the
  time, since that is one side of a two-sided sequence);
- **reject** when the upper bound is below ``min_delta``: it cannot be better by that much;

and otherwise **reject** as inconclusive once ``max_duration_s`` has passed, or
**continue**.

>>> gate = ShadowGate(GateConfig(min_samples=100))
>>> pairs = gate.paired_scores()
>>> right, wrong = {"prediction": 1}, {"prediction": 0}
>>> for i in range(400):  # the candidate fixes every fourth row the champion gets wrong
...     pairs.add(wrong if i % 4 == 0 else right, right, label=1)
>>> decision = gate.decide(pairs, elapsed_s=60.0)
>>> decision.verdict, decision.evidence["n"]
('promote', 400)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from driftloop.evaluation.paired_f1 import PairedF1
from driftloop.evaluation.scores import Label, Metric, Output
from driftloop.evaluation.scores import metric as resolve_metric
from driftloop.evaluation.sequence import ConfidenceSequence

Verdict = Literal["promote", "reject", "continue"]
_F1_PER_ROW = resolve_metric("f1").per_row


@dataclass(frozen=True)
class PairedSummary:
    """What the decision rule reads from a :class:`PairedScores`: a snapshot that can be
    recorded and judged again later. ``mean``, ``lower`` and ``upper`` are in per-row
    metric units (positive: candidate better); ``mean`` is NaN before any pair."""

    metric: str
    alpha: float
    n: int
    mean: float
    lower: float
    upper: float
    candidate_failures: int
    champion_failures: int
    units: str = "per request"


class PairedScores:
    """Paired per-row score differences of candidate and champion on the same requests.

    The differences live in ``[low - high, high - low]`` of the metric's per-row range and
    feed a :class:`ConfidenceSequence` at level ``alpha``. Failed outputs (None) score the
    metric's worst and are also counted, for the gate's error-rate guardrail.
    """

    units = "per request"

    def __init__(self, metric: Metric | str, alpha: float) -> None:
        self.metric = resolve_metric(metric)
        span = self.metric.high - self.metric.low
        self.sequence = ConfidenceSequence(alpha, -span, span)
        self.candidate_failures = 0
        self.champion_failures = 0

    @property
    def n(self) -> int:
        return self.sequence.n

    @property
    def mean(self) -> float:
        return self.sequence.mean

    @property
    def lower(self) -> float:
        return self.sequence.lower

    @property
    def upper(self) -> float:
        return self.sequence.upper

    def add(self, champion_output: Output, candidate_output: Output, label: Label) -> None:
        """Record one labelled request that both models answered (or failed on)."""
        self.extend([champion_output], [candidate_output], [label])

    def extend(self, champion_outputs: Sequence[Output], candidate_outputs: Sequence[Output],
               labels: Sequence[Label]) -> None:
        """Record several labelled requests, in order."""
        score = self.metric.per_row
        rows = list(zip(champion_outputs, candidate_outputs, labels, strict=True))
        deltas = [score(candidate, y) - score(champion, y) for champion, candidate, y in rows]
        self.sequence.extend(np.array(deltas, dtype=np.float64))
        self.champion_failures += sum(champion is None for champion, _, _ in rows)
        self.candidate_failures += sum(candidate is None for _, candidate, _ in rows)

    def summary(self) -> PairedSummary:
        return PairedSummary(self.metric.name, self.sequence.alpha, self.n, self.mean,
                             self.lower, self.upper, self.candidate_failures,
                             self.champion_failures, self.units)


Pairs = PairedScores | PairedF1


@dataclass(frozen=True)
class GateConfig:
    """The gate's settings. Every field is validated; a bad value names itself.

    - ``metric``: a built-in name or a :class:`Metric` (see :func:`~driftloop.evaluation.metric`).
    - ``min_delta``: the improvement the candidate must show, in *per-row* metric units
      (for accuracy, a share of rows), or in F1 for ``"f1"``, which is tested as F1 (see
      :mod:`~driftloop.evaluation.paired_f1`). Negative values make it a non-inferiority
      test. Metrics that are no mean over requests and have no sequential test (ROC AUC)
      are refused, with the reason.
    - ``alpha``: two-sided level of the confidence sequence.
    - ``min_samples``: labelled pairs before any verdict, so that early luck and the
      error-rate guardrail's small-sample noise cannot decide.
    - ``max_duration_s``: shadowing time after which an undecided candidate is rejected.
    - ``max_error_rate_ratio`` / ``error_rate_slack``: the candidate's failure rate may be
      at most ``ratio * champion rate + slack``. The slack keeps a champion that never
      fails from making a single candidate failure fatal.
    - ``max_latency_ratio``: the candidate's offline p95 latency may be at most this
      multiple of the champion's.
    - ``holdout_tolerance``: how far (in aggregate metric units) the candidate's holdout
      metric may trail the champion's and still pass.
    - ``label_horizon_s``: a shadowed request joins the evidence only once it is this old,
      so that its label had time to arrive whatever its outcome (see
      :mod:`~driftloop.evaluation.horizon`). 0 pairs every labelled request at once, which
      is biased when labels of one outcome arrive later than the other's.
    """

    metric: str | Metric = "accuracy"
    min_delta: float = 0.0
    alpha: float = 0.05
    min_samples: int = 200
    max_duration_s: float = 3600.0
    max_error_rate_ratio: float = 1.5
    error_rate_slack: float = 0.01
    max_latency_ratio: float = 1.5
    holdout_tolerance: float = 0.0
    label_horizon_s: float = 0.0

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("min_delta", math.isfinite(self.min_delta), "must be finite"),
            ("alpha", 0.0 < self.alpha < 1.0, "must be in (0, 1)"),
            ("min_samples", self.min_samples >= 1, "must be >= 1"),
            ("max_duration_s", self.max_duration_s > 0.0, "must be > 0"),
            ("max_error_rate_ratio", self.max_error_rate_ratio > 0.0, "must be > 0"),
            ("error_rate_slack", 0.0 <= self.error_rate_slack <= 1.0, "must be in [0, 1]"),
            ("max_latency_ratio", self.max_latency_ratio > 0.0, "must be > 0"),
            ("holdout_tolerance", 0.0 <= self.holdout_tolerance < math.inf,
             "must be finite and >= 0"),
            ("label_horizon_s", 0.0 <= self.label_horizon_s < math.inf,
             "must be finite and >= 0"),
        ]
        for name, ok, why in checks:
            if not ok:
                raise ValueError(f"GateConfig.{name} {why}, got {getattr(self, name)!r}")
        try:
            resolved = resolve_metric(self.metric)
        except ValueError as exc:
            raise ValueError(f"GateConfig.metric: {exc}") from exc
        if resolved.online_refusal is not None:
            raise ValueError(f"GateConfig.metric {resolved.name!r}: {resolved.online_refusal}")


@dataclass(frozen=True)
class GateDecision:
    """A verdict, the sentence that explains it, and the numbers behind it."""

    verdict: Verdict
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HoldoutResult:
    """Both models on the holdout. ``champion`` / ``candidate`` are the aggregate metric;
    ``delta`` is oriented so that positive means the candidate is better. ``lower`` /
    ``upper`` bound the mean *per-row* paired difference (what the online gate will
    measure); a confidence sequence is also valid at the fixed size of a holdout."""

    metric: str
    champion: float
    candidate: float
    delta: float
    n: int
    lower: float
    upper: float
    candidate_failures: int
    champion_failures: int
    passed: bool
    reason: str


class ShadowGate:
    """Decides promotion from holdout and shadow-traffic evidence; see the module doc."""

    def __init__(self, config: GateConfig | None = None) -> None:
        self.config = config or GateConfig()
        self.metric = resolve_metric(self.config.metric)

    def paired_scores(self) -> Pairs:
        """An empty accumulator for this gate's metric and alpha: the F1 test for ``"f1"``,
        the per-request confidence sequence for every mean over requests."""
        if self.metric.name == "f1" and self.metric.per_row is _F1_PER_ROW:
            return PairedF1(self.config.alpha)
        return PairedScores(self.metric, self.config.alpha)

    def decide(self, pairs: Pairs | PairedSummary, elapsed_s: float) -> GateDecision:
        """The verdict after ``elapsed_s`` seconds of shadowing; safe to call after every
        label, since the confidence sequence is valid at any stopping time."""
        cfg = self.config
        s = pairs if isinstance(pairs, PairedSummary) else pairs.summary()
        if (s.metric, s.alpha) != (self.metric.name, cfg.alpha):
            raise ValueError(f"pairs were scored with metric {s.metric!r} at alpha {s.alpha}, "
                             f"the gate uses {self.metric.name!r} at {cfg.alpha}")
        evidence: dict[str, Any] = {
            "metric": s.metric, "n": s.n, "mean_delta": s.mean if s.n else None,
            "lower": s.lower, "upper": s.upper, "min_delta": cfg.min_delta,
            "alpha": cfg.alpha, "candidate_failures": s.candidate_failures,
            "champion_failures": s.champion_failures, "elapsed_s": elapsed_s,
            "units": s.units,
        }

        def verdict(v: Verdict, reason: str) -> GateDecision:
            return GateDecision(v, reason, evidence)

        if s.n >= cfg.min_samples:
            candidate_rate, champion_rate = s.candidate_failures / s.n, s.champion_failures / s.n
            allowed = cfg.max_error_rate_ratio * champion_rate + cfg.error_rate_slack
            if candidate_rate > allowed:
                return verdict("reject", f"candidate failed on {candidate_rate:.1%} of {s.n} "
                               f"requests, above the {allowed:.1%} allowed "
                               f"(champion: {champion_rate:.1%})")
            if s.lower > cfg.min_delta:
                return verdict("promote", f"candidate beats the champion on {s.metric} by "
                               f"at least {s.lower:.4g} {s.units} (> {cfg.min_delta:g}) after "
                               f"{s.n} requests, at confidence {1 - cfg.alpha:g}")
            if s.upper < cfg.min_delta:
                return verdict("reject", f"candidate cannot beat the champion on {s.metric} by "
                               f"{cfg.min_delta:g} {s.units}: at most {s.upper:.4g} after "
                               f"{s.n} requests, at confidence {1 - cfg.alpha:g}")
        if elapsed_s >= cfg.max_duration_s:
            return verdict("reject", f"inconclusive after {elapsed_s:.0f} s and {s.n} "
                           f"requests: difference in [{s.lower:.4g}, {s.upper:.4g}], "
                           f"min_delta {cfg.min_delta:g}")
        return verdict("continue", f"undecided after {s.n} requests: difference in "
                       f"[{s.lower:.4g}, {s.upper:.4g}], min_delta {cfg.min_delta:g}")

    def offline(self, champion_outputs: Sequence[Output], candidate_outputs: Sequence[Output],
                labels: Sequence[Label]) -> HoldoutResult:
        """Compare both models on the same holdout rows.

        ``passed`` when the candidate's aggregate metric is no worse than the champion's
        by more than ``holdout_tolerance`` (``delta >= -holdout_tolerance``). Equality
        passes: the online gate, not the holdout, must show the improvement, and a retrain
        on fresh data is often only *as good* on an old holdout.
        """
        m = self.metric
        champion = m.aggregate(champion_outputs, labels)
        candidate = m.aggregate(candidate_outputs, labels)
        delta = candidate - champion if m.higher_is_better else champion - candidate
        pairs = self.paired_scores()
        pairs.extend(champion_outputs, candidate_outputs, labels)
        tolerance = self.config.holdout_tolerance
        passed = delta >= -tolerance
        reason = (f"holdout {m.name}: candidate {candidate:.4g}, champion {champion:.4g}, "
                  f"{delta:+.4g} in the candidate's favour, "
                  f"{'within' if passed else 'beyond'} the tolerance {tolerance:g}")
        return HoldoutResult(m.name, champion, candidate, delta, pairs.n, pairs.lower,
                             pairs.upper, pairs.candidate_failures, pairs.champion_failures,
                             passed, reason)

    def latency_guard(self, champion_p95_s: float, candidate_p95_s: float) -> tuple[bool, str]:
        """Whether the candidate's offline p95 latency is within ``max_latency_ratio`` of
        the champion's: a faster model of equal quality is welcome, a much slower one
        would push the serving p95 up even if it predicts better."""
        for name, value in (("champion_p95_s", champion_p95_s),
                            ("candidate_p95_s", candidate_p95_s)):
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be a finite time > 0, got {value!r}")
        ratio = candidate_p95_s / champion_p95_s
        ok = ratio <= self.config.max_latency_ratio
        return ok, (f"candidate p95 {candidate_p95_s * 1000:.1f} ms is {ratio:.2f}x the "
                    f"champion's {champion_p95_s * 1000:.1f} ms "
                    f"({'within' if ok else 'above'} the {self.config.max_latency_ratio:g}x "
                    "limit)")
