"""The variance-inflation estimate, all columns at once, against the same rules written
out per column in plain Python (the form it had before it was vectorised)."""

from __future__ import annotations

import itertools
from collections import deque
from statistics import median

import numpy as np
import pytest
from scipy import special

from driftloop.drift import dispersion
from driftloop.drift.dispersion import Dispersion
from driftloop.drift.stats import chi2_homogeneity


def _plain_estimates(panes: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[float, float]]:
    """Per column (distribution, missing) inflation, one series and one value at a time."""
    columns = panes[0][0].shape[0]
    history = [(deque(maxlen=dispersion.HISTORY), deque(maxlen=dispersion.HISTORY))
               for _ in range(columns)]
    for (h0, s0), (h1, s1) in itertools.pairwise(panes):
        for c in range(columns):
            for series, a, b in ((history[c][0], h0[c], h1[c]), (history[c][1], s0[c], s1[c])):
                if a.sum() and b.sum():
                    statistic, dof = chi2_homogeneity(a, b)
                    series.append((statistic / dof, dof) if dof else (1.0, 0))

    def kept(series: deque[tuple[float, int]]) -> list[tuple[float, int]]:
        if len(series) < dispersion.MIN_HISTORY:
            return []
        dof = max(1, int(median(d for _, d in series)))
        spread = special.chdtri(dof, dispersion.SPIKE_TAIL) / special.chdtri(dof, 0.5)
        limit = median(r for r, _ in series) * spread
        return [(r, d) for r, d in series if r <= limit]

    def independent(observations: list[tuple[float, int]]) -> bool:
        statistic = sum(r * d for r, d in observations)
        dof = sum(d for _, d in observations)
        return dof == 0 or special.chdtrc(dof, statistic) > dispersion.INDEPENDENCE_LEVEL

    stream = independent([o for pair in history for s in pair for o in kept(s)])

    def estimate(series: deque[tuple[float, int]]) -> float:
        if not series:
            return 1.0
        observations = kept(series)
        if len(observations) < 2:
            return max(1.0, *(r for r, _ in series))
        if stream and independent(observations):
            return 1.0
        ratios = np.array([r for r, _ in observations])
        return max(1.0, ratios.mean() + dispersion.CONFIDENCE_Z * ratios.std(ddof=1)
                   / np.sqrt(ratios.size))

    return [(estimate(a), estimate(b)) for a, b in history]


def _panes(count: int, cluster: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Panes of 3 columns: 6 bins drawn in clusters of ``cluster`` rows (a shift halfway),
    a column that is never missing, and one whose first panes are empty."""
    rng = np.random.default_rng(seed)
    panes = []
    for k in range(count):
        shift = 0.3 if k > count // 2 else 0.0
        p = np.array([0.3 - shift / 2, 0.2, 0.2, 0.1, 0.1, 0.1 + shift / 2])
        draws = [np.repeat(rng.multinomial(500 // cluster, p), cluster) for _ in range(3)]
        histograms = np.array([[d[i::3].sum() for i in range(6)] for d in draws])
        if k < 2:
            histograms[2] = 0
        missing = rng.poisson([5 * cluster, 0, 3])
        panes.append((histograms, np.stack([histograms.sum(axis=1), missing], axis=1)))
    return panes


@pytest.mark.parametrize(("count", "cluster", "seed"),
                         [(2, 1, 0), (4, 1, 1), (12, 1, 2), (12, 10, 3), (80, 1, 4),
                          (80, 25, 5), (30, 5, 6)])
def test_inflations_equal_the_per_column_rules(count: int, cluster: int, seed: int) -> None:
    panes = _panes(count, cluster, seed)
    tracker = Dispersion(3)
    for pane_id, (histograms, shares) in enumerate(panes):
        tracker.add_pane(pane_id, histograms, shares)
    expected = _plain_estimates(panes)
    assert tracker.inflations() == pytest.approx(np.array(expected), rel=1e-12)
    assert [tracker.inflation(c) for c in range(3)] == [tuple(row) for row in
                                                        tracker.inflations().tolist()]
    restored = Dispersion.from_dict(3, tracker.to_dict())
    assert restored.to_dict() == tracker.to_dict()
    assert np.array_equal(restored.inflations(), tracker.inflations())


def test_a_stored_previous_pane_of_uneven_widths_is_read() -> None:
    """Stored states hold each column's last histogram at its own width."""
    data = {"last_id": 4, "pairs": 0, "history": [[[], []], [[], []]],
            "previous": [[[10, 20, 30], [60, 0]], [[5, 5], [10, 2]]]}
    tracker = Dispersion.from_dict(2, data)
    tracker.add_pane(5, np.array([[12, 18, 30], [6, 4, 0]]), np.array([[60, 0], [10, 1]]))
    assert tracker.pairs == 1
    assert tracker.to_dict()["history"][1][0][0][1] == 1  # two bins: one degree of freedom
