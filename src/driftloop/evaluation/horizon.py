"""Labels that arrive later for one outcome than for the other.

Feedback often depends on the outcome: a fraud is confirmed weeks after a legitimate
payment is, a churned customer is known only once the renewal date has passed. A gate that
pairs every request as soon as its label arrives then sees, early on, mostly the outcome
labelled first, and judges the models on it: a candidate with the champion's accuracy but
a recall of 0.52 against 0.70 was promoted in 500 of 500 simulated runs when positives
were labelled 10,000 requests after negatives (0.6 % without the delay).

Two remedies, both here:

- :class:`LabelHorizon`: a request joins the evidence only once it is ``horizon`` old, in
  request order. If every label arrives within the horizon, the evidence is then an
  unbiased sample of the traffic (every request old enough, labelled or not yet, whatever
  its outcome). The cost: the gate decides ``horizon`` later.
- :func:`label_share`: detects the condition: among requests of one age, the labelled
  share differs between predicted classes (a chi-square test of labelled vs not labelled
  by predicted class), which is what outcome-dependent delay looks like from the server.
  :func:`labelled_share_by_prediction` runs it on the requests a gate pairs (the shadow
  phase's requests old enough to have passed the horizon): a divergence there means the
  horizon is too short, or unset, and the evidence is biased.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import chi2_contingency

from driftloop.evaluation.scores import Label, Output


class LabelHorizon:
    """Holds labelled pairs until their request is ``horizon`` old, then releases them in
    request order."""

    def __init__(self, horizon: float) -> None:
        if not (horizon >= 0.0 and np.isfinite(horizon)):
            raise ValueError(f"horizon must be finite and >= 0, got {horizon!r}")
        self.horizon = horizon
        self._heap: list[tuple[float, int, Output, Output, Label]] = []
        self._order = itertools.count()

    @property
    def pending(self) -> int:
        return len(self._heap)

    def add(self, request_times: Sequence[float], champion_outputs: Sequence[Output],
            candidate_outputs: Sequence[Output], labels: Sequence[Label]) -> None:
        for row in zip(request_times, champion_outputs, candidate_outputs, labels, strict=True):
            t, champion, candidate, label = row
            heapq.heappush(self._heap, (float(t), next(self._order), champion, candidate, label))

    def release(self, now: float) -> tuple[list[Output], list[Output], list[Label]]:
        """(champion outputs, candidate outputs, labels) of the requests made at or before
        ``now - horizon``, oldest first; they leave the buffer."""
        cutoff = now - self.horizon
        champion: list[Output] = []
        candidate: list[Output] = []
        labels: list[Label] = []
        while self._heap and self._heap[0][0] <= cutoff:
            _, _, a, b, y = heapq.heappop(self._heap)
            champion.append(a)
            candidate.append(b)
            labels.append(y)
        return champion, candidate, labels


@dataclass(frozen=True)
class LabelShare:
    """Labelled share of requests by predicted class, and whether it diverges."""

    shares: dict[Any, float]
    pvalue: float
    diverging: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (class names as strings), for a run's evidence."""
        return {"shares": {str(k): v for k, v in self.shares.items()},
                "pvalue": self.pvalue, "diverging": self.diverging}

    def describe(self) -> str:
        parts = ", ".join(f"{k!r}: {v:.1%}" for k, v in self.shares.items())
        verdict = "labels arrive depending on the outcome" if self.diverging else "even"
        return f"labelled share by predicted class {parts} ({verdict}, p = {self.pvalue:.3g})"


def label_share(requests: Mapping[Any, int], labelled: Mapping[Any, int],
                alpha: float = 0.001) -> LabelShare:
    """Compare the labelled share of requests between predicted classes.

    ``requests[c]``: requests of one age range whose prediction was ``c``; ``labelled[c]``:
    how many of them have a label. ``diverging`` when a chi-square test of labelled vs
    unlabelled by class rejects at ``alpha``: a sign that the label delay depends on the
    outcome, so that a gate pairing requests as labels arrive is biased (set a label
    horizon longer than the slowest label).
    """
    classes = [c for c in requests if requests[c] > 0]
    done = np.array([labelled.get(c, 0) for c in classes], dtype=np.float64)
    total = np.array([requests[c] for c in classes], dtype=np.float64)
    if np.any(done > total):
        raise ValueError("labelled counts cannot exceed request counts")
    shares = {c: float(d / t) for c, d, t in zip(classes, done, total, strict=True)}
    table = np.vstack([done, total - done])
    if len(classes) < 2 or np.any(table.sum(axis=1) == 0):
        return LabelShare(shares, 1.0, False)
    pvalue = float(chi2_contingency(table, correction=False).pvalue)
    return LabelShare(shares, pvalue, pvalue < alpha)


#: Predictions with more distinct values than this are not classes (a regressor's): the
#: labelled share is not compared by prediction then.
MAX_CLASSES = 20


def labelled_share_by_prediction(outputs: Sequence[Output], labelled: Sequence[bool],
                                 alpha: float = 0.001) -> LabelShare | None:
    """:func:`label_share` over requests given as their (champion's) outputs and whether
    each has a label yet; None when the predictions are not classes (more than
    :data:`MAX_CLASSES` distinct values) or there are no requests."""
    requests: Counter[Any] = Counter()
    done: Counter[Any] = Counter()
    for output, has_label in zip(outputs, labelled, strict=True):
        predicted = None if output is None else output.get("prediction")
        if isinstance(predicted, list | dict):  # not a class label
            return None
        requests[predicted] += 1
        done[predicted] += bool(has_label)
    if not requests or len(requests) > MAX_CLASSES:
        return None
    return label_share(requests, done, alpha)
