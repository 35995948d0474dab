"""How much more the live stream varies than independent rows would: a variance inflation.

Every test in the detector assumes the window's events are independent draws. Real traffic
is clustered: one household, one customer session, one sensor burst sends many similar
rows in a row. Then a window's bin shares vary several times more than the binomial model
says (2.5-2.9x on a household survey), chi-square and KS statistics are inflated by the
same factor, and stationary traffic raises false alarms that an i.i.d. benchmark hides.

The inflation is measured where it shows: between consecutive panes of the live stream.
Two panes drawn from the same population give a chi-square homogeneity statistic whose
null distribution is ``φ · χ²(dof)`` when the rows cluster with design effect ``φ``
(``φ = 1`` for independent rows). Each closed pane is compared with the pane before it,
per column (the distribution on the tested bins, and the missing share); the statistic
over its degrees of freedom is one observation of ``φ``. The estimate is an
upper confidence bound on the mean of the last :data:`HISTORY` observations (mean plus
:data:`CONFIDENCE_Z` standard errors), floored at 1 (a stream is never treated as *less*
variable than independent rows):

- observations far beyond the median (further than chi-square's 99.9th percentile is from
  its median) are left out: they are the panes where a real shift started (the panes
  before and after it differ), so a shift does not mask itself;
- a mean rather than a median, because clustered statistics are right-skewed and a median
  underestimates; the confidence bound covers a short or heavy-tailed history;
- until :data:`MIN_HISTORY` panes have been compared the estimate is not trusted: the
  detector raises no alarm (its reports say ``warming_up``), and a report uses the
  largest observation so far, or 1 with none at all (a one-off batch report). So a
  stream's first ``MIN_HISTORY + 1`` panes (10,000 events at the default window) can
  never raise an alarm: the start-up cost of not knowing the stream's clustering (the
  confidence bound on a mean of three or four observations is wide, so the first alarms
  after it need clear evidence). The
  history survives a new reference, so a promotion does not pay it again.

First, though, a test of ``φ = 1``: a column is tested as independent rows (inflation
exactly 1) when the stream's kept observations, all columns together, **and** the
column's own are consistent with chi-square on their degrees of freedom (a sum of
independent chi-squares; not rejected at :data:`INDEPENDENCE_LEVEL`). Without it,
independent rows paid for the bound's width: after 8 panes of independent rows the bound
was 1.4-1.6 for a 19-dof chi-square, and a 5-point share change was detected after 6-7
panes instead of plain Bonferroni's 2. The stream-wide test is what keeps clustered
streams safe: a column clustered only mildly (φ 1.4-1.8) can look independent over a few
noisy observations of its own (that alone raised 6 and 4 false alarms in 6 M events of
fresh household streams, block 10 and 100, against 1 and 0), but the stream's strongly
clustered columns reject ``φ = 1`` for all of them from the first panes.

The assumption: the clustering is short compared with a pane (clusters do not straddle
many panes) and changes slowly. The cost: a feature whose rows cluster with design effect
``φ`` is tested as if the window held ``1/φ`` as many events, so its detection delay grows
accordingly; on independent rows the test of ``φ = 1`` keeps the inflation at 1, but for
the few evaluations where it rejects by chance.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from functools import lru_cache
from statistics import median
from typing import Any

import numpy as np
from scipy import special

from driftloop.drift.stats import chi2_homogeneity

IntArray = np.ndarray
#: Pane-to-pane observations kept per column.
HISTORY = 63
#: Observations below which the largest is used.
MIN_HISTORY = 3
#: An observation beyond the median times the ``1 - SPIKE_TAIL`` quantile of chi-square over
#: its median (for the comparisons' degrees of freedom) is a shift, not noise, and is left out.
SPIKE_TAIL = 0.001
#: The estimate is the mean plus this many standard errors: an upper confidence bound, so
#: that a short or heavy-tailed history errs towards fewer false alarms.
CONFIDENCE_Z = 2.0
#: The history is taken as independent rows (inflation 1) unless a chi-square test of
#: all its kept observations together rejects ``φ = 1`` at this level.
INDEPENDENCE_LEVEL = 0.01
Observation = tuple[float, int]


class Dispersion:
    """Running variance-inflation estimates, two per column (distribution, missing share)."""

    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.last_id: int | None = None
        self.pairs = 0  # pane-to-pane comparisons made
        self._previous: list[tuple[IntArray, IntArray]] | None = None
        self._stream_independent: tuple[int, bool] | None = None  # (pairs, verdict)
        #: Per column, (statistic / dof, dof) of each pane-to-pane comparison.
        self.history: list[tuple[deque[Observation], deque[Observation]]] = [
            (deque(maxlen=HISTORY), deque(maxlen=HISTORY)) for _ in range(columns)
        ]

    def add_pane(self, pane_id: int, histograms: Sequence[tuple[IntArray, IntArray]]) -> None:
        """Record one closed pane: per column its tested-bin counts and [present, missing]."""
        if self.last_id is not None and pane_id <= self.last_id:
            return
        if self._previous is not None:
            self.pairs += 1
            for history, before, now in zip(self.history, self._previous, histograms,
                                            strict=True):
                for series, a, b in zip(history, before, now, strict=True):
                    ratio = _ratio(a, b)
                    if ratio is not None:
                        series.append(ratio)
        self._previous = [(np.asarray(h), np.asarray(m)) for h, m in histograms]
        self.last_id = pane_id

    def carry_history(self, previous: Dispersion) -> None:
        """Keep ``previous``'s observations (the stream's clustering does not change with
        a new reference) but not its last pane, whose bins were the old reference's."""
        if previous.columns == self.columns:
            self.history, self.pairs = previous.history, previous.pairs
            self._stream_independent = None

    @property
    def settled(self) -> bool:
        """Whether enough panes were compared for the estimate to be trusted: the
        detector raises no alarm before (see the module doc)."""
        return self.pairs >= MIN_HISTORY

    def inflation(self, column: int) -> tuple[float, float]:
        """(distribution, missing share) inflation of ``column``; 1.0 without evidence."""
        independent = self.stream_independent
        return (_estimate(self.history[column][0], independent),
                _estimate(self.history[column][1], independent))

    @property
    def stream_independent(self) -> bool:
        """Whether every column's kept observations together are consistent with
        independent rows (computed once per pane): the stream's clustering shows in its
        most clustered columns first, and this test sees all of them at once."""
        if self._stream_independent is None or self._stream_independent[0] != self.pairs:
            kept = (o for pair in self.history for series in pair for o in _kept(series))
            self._stream_independent = (self.pairs, _independent(kept))
        return self._stream_independent[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "last_id": self.last_id,
            "pairs": self.pairs,
            "previous": None if self._previous is None else [
                [h.tolist(), m.tolist()] for h, m in self._previous],
            "history": [[list(a), list(b)] for a, b in self.history],
        }

    @classmethod
    def from_dict(cls, columns: int, data: dict[str, Any] | None) -> Dispersion:
        out = cls(columns)
        if not data:
            return out
        out.last_id = None if data["last_id"] is None else int(data["last_id"])
        out.pairs = int(data.get("pairs", 0))
        if data["previous"] is not None:
            out._previous = [(np.asarray(h, dtype=np.int64), np.asarray(m, dtype=np.int64))
                             for h, m in data["previous"]]
        for series, (a, b) in zip(out.history, data["history"], strict=True):
            series[0].extend((float(r), int(d)) for r, d in a)
            series[1].extend((float(r), int(d)) for r, d in b)
        return out


def _ratio(a: IntArray, b: IntArray) -> Observation | None:
    if a.sum() == 0 or b.sum() == 0:
        return None
    statistic, dof = chi2_homogeneity(a, b)
    if dof == 0:  # both panes in one cell (say, never missing): nothing over-dispersed
        return 1.0, 0
    return statistic / dof, dof


@lru_cache(maxsize=256)
def _spread(dof: int) -> float:
    """Chi-square's ``1 - SPIKE_TAIL`` quantile over its median, for ``dof``."""
    return float(special.chdtri(dof, SPIKE_TAIL) / special.chdtri(dof, 0.5))


def _kept(series: deque[Observation]) -> list[Observation]:
    """The observations of a settled series that are noise, not the start of a shift."""
    if len(series) < MIN_HISTORY:
        return []
    # statistics.median on these short lists: the same value as np.median at a fiftieth
    # of its cost, which ran at every evaluation for every column.
    dof = max(1, int(median(d for _, d in series)))
    limit = median(r for r, _ in series) * _spread(dof)
    return [(r, d) for r, d in series if r <= limit]


def _independent(observations: Iterable[Observation]) -> bool:
    """Whether observations of ``φ`` look like independent rows: their statistics summed
    against chi-square on their summed degrees of freedom (the sum of independent
    chi-squares) does not reject ``φ = 1`` at :data:`INDEPENDENCE_LEVEL`."""
    statistic = dof = 0.0
    for ratio, d in observations:
        statistic += ratio * d
        dof += d
    return dof == 0 or float(special.chdtrc(dof, statistic)) > INDEPENDENCE_LEVEL


def _estimate(series: deque[Observation], stream_independent: bool) -> float:
    if not series:
        return 1.0
    kept = _kept(series)
    if len(kept) < 2:
        return max(1.0, *(r for r, _ in series))
    if stream_independent and _independent(kept):
        return 1.0
    ratios = np.array([r for r, _ in kept])
    bound = ratios.mean() + CONFIDENCE_Z * ratios.std(ddof=1) / np.sqrt(ratios.size)
    return max(1.0, float(bound))
