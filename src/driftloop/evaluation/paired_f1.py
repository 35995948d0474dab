"""A sequential test of the F1 difference between two classifiers on the same requests.

F1 is not a mean over requests, so the per-request confidence sequence of
:class:`~driftloop.evaluation.gate.PairedScores` cannot test it: falling back to per-request
accuracy let an always-negative candidate (F1 0) beat a champion with F1 0.48 at 2 %
positives in 100 of 100 runs. But F1 is a monotone function of three means. With ``a`` the
rate of true positives, ``b`` the rate of false positives and ``π`` the rate of positive
labels (shared by both models, since the labels are),

    F1 = 2 TP / (2 TP + FP + FN) = 2a / (a + b + π)

which increases with ``a`` and decreases with ``b`` and ``π``. So five time-uniform
confidence sequences (each model's ``a`` and ``b``, and ``π``), each at ``alpha / 5``, hold
all five means at once with probability ``1 - alpha`` (a union bound), and then each
model's F1 lies between ``2a⁻ / (a⁻ + b⁺ + π⁺)`` and ``2a⁺ / (a⁺ + b⁻ + π⁻)``, and the
difference between the two models' bounds. Valid at every time at once, like the gate's
other test, and conservative: it needs more labels than a test of accuracy would.

The positive class is the second of the sorted classes (as :func:`~driftloop.evaluation.
scores.metric` ``"f1"`` takes it on a holdout); rows wait until two classes have been
seen. More than two classes are refused: macro F1 online is not implemented.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from driftloop.evaluation.scores import Label, Output
from driftloop.evaluation.sequence import ConfidenceSequence

if TYPE_CHECKING:
    from driftloop.evaluation.gate import PairedSummary

PARTS = ("candidate_tp", "candidate_fp", "champion_tp", "champion_fp", "positive")


class PairedF1:
    """Confidence bounds on ``F1(candidate) - F1(champion)``, in F1 units; the same
    interface as :class:`~driftloop.evaluation.gate.PairedScores`."""

    units = "in F1"

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.name = "f1"
        self.parts = {part: ConfidenceSequence(alpha / len(PARTS), 0.0, 1.0) for part in PARTS}
        self.sums = dict.fromkeys(PARTS, 0.0)
        self.positive: Any = None
        self.classes: set[Any] = set()
        self._pending: list[tuple[Output, Output, Label]] = []
        self.candidate_failures = 0
        self.champion_failures = 0

    @property
    def n(self) -> int:
        return self.parts["positive"].n

    def add(self, champion_output: Output, candidate_output: Output, label: Label) -> None:
        self.extend([champion_output], [candidate_output], [label])

    def extend(self, champion_outputs: Sequence[Output], candidate_outputs: Sequence[Output],
               labels: Sequence[Label]) -> None:
        rows = list(zip(champion_outputs, candidate_outputs, labels, strict=True))
        self.champion_failures += sum(champion is None for champion, _, _ in rows)
        self.candidate_failures += sum(candidate is None for _, candidate, _ in rows)
        for champion, candidate, label in rows:
            self.classes.add(label)
            self.classes.update(o["prediction"] for o in (champion, candidate) if o is not None)
        if len(self.classes) > 2:
            raise ValueError(f"the online F1 gate needs a binary problem, got classes "
                             f"{sorted(self.classes, key=repr)}; gate on 'accuracy' instead")
        self._pending.extend(rows)
        if len(self.classes) < 2:
            return  # the positive class is not known yet
        if self.positive is None:
            self.positive = sorted(self.classes)[1]
        rows, self._pending = self._pending, []
        positive = self.positive

        def predicts(output: Output) -> bool:
            return output is not None and output["prediction"] == positive

        is_positive = np.array([y == positive for _, _, y in rows], dtype=np.float64)
        columns = {"positive": is_positive}
        for name, outputs in (("champion", [a for a, _, _ in rows]),
                              ("candidate", [b for _, b, _ in rows])):
            says = np.array([predicts(o) for o in outputs], dtype=np.float64)
            columns[f"{name}_tp"] = says * is_positive
            columns[f"{name}_fp"] = says * (1.0 - is_positive)
        for part, values in columns.items():
            self.parts[part].extend(values)
            self.sums[part] += float(values.sum())

    def _f1_bounds(self, model: str) -> tuple[float, float]:
        tp, fp, pos = (self.parts[f"{model}_tp"], self.parts[f"{model}_fp"],
                       self.parts["positive"])
        return (_f1(tp.lower, fp.upper, pos.upper), _f1(tp.upper, fp.lower, pos.lower))

    @property
    def lower(self) -> float:
        return self._f1_bounds("candidate")[0] - self._f1_bounds("champion")[1]

    @property
    def upper(self) -> float:
        return self._f1_bounds("candidate")[1] - self._f1_bounds("champion")[0]

    @property
    def mean(self) -> float:
        """The point estimate of the F1 difference; NaN before any row."""
        if not self.n:
            return math.nan
        s = self.sums
        return (_f1(s["candidate_tp"], s["candidate_fp"], s["positive"])
                - _f1(s["champion_tp"], s["champion_fp"], s["positive"]))

    def summary(self) -> PairedSummary:
        from driftloop.evaluation.gate import PairedSummary  # noqa: PLC0415 - gate imports us

        return PairedSummary(self.name, self.alpha, self.n, self.mean, self.lower, self.upper,
                             self.candidate_failures, self.champion_failures, self.units)


def _f1(tp: float, fp: float, positive: float) -> float:
    """``2a / (a + b + π)`` (rates or counts alike); 0 when nothing is positive at all."""
    denominator = tp + fp + positive
    return 0.0 if denominator <= 0.0 else min(1.0, 2.0 * tp / denominator)
