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

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from driftloop.drift.stats import chi2_homogeneity_rows

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
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


class Dispersion:
    """Running variance-inflation estimates, two per column (distribution, missing share).

    The observations live in one ``(2 · columns, HISTORY)`` array per quantity (row
    ``2c`` the distribution of column ``c``, row ``2c + 1`` its missing share), oldest
    first, so that a pane close updates every column in a few array operations and the
    estimates of all columns are computed together, once per pane (:meth:`inflations`):
    per column and per read in Python they were most of what an evaluation cost.
    """

    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.last_id: int | None = None
        self.pairs = 0  # pane-to-pane comparisons made
        #: The last pane's tested-bin counts (columns x bins, zero-padded) and
        #: [present, missing] per column.
        self._previous: tuple[IntArray, IntArray] | None = None
        #: Per series, statistic / dof and dof of each pane-to-pane comparison.
        self._ratios = np.zeros((2 * columns, HISTORY))
        self._dofs = np.zeros((2 * columns, HISTORY), dtype=np.int64)
        self._sizes = np.zeros(2 * columns, dtype=np.int64)
        self._inflations: FloatArray | None = None  # cache of inflations()

    def add_pane(self, pane_id: int, histograms: IntArray, shares: IntArray) -> None:
        """Record one closed pane: per column (one row each) its tested-bin counts,
        zero-padded to a common width, and its [present, missing] counts."""
        if self.last_id is not None and pane_id <= self.last_id:
            return
        if self._previous is not None:
            self.pairs += 1
            before, before_shares = self._previous
            width = max(before.shape[1], histograms.shape[1])
            distribution = _ratios(_pad(before, width), _pad(histograms, width))
            missing = _ratios(before_shares, shares)
            # Interleaved: row 2c the distribution of column c, row 2c + 1 its missing share.
            self._append(*(np.stack([d, m], axis=1).ravel()
                           for d, m in zip(distribution, missing, strict=True)))
        self._previous = (np.asarray(histograms, dtype=np.int64),
                          np.asarray(shares, dtype=np.int64))
        self.last_id = pane_id

    def _append(self, ratios: Any, dofs: Any, valid: Any) -> None:
        rows = np.flatnonzero(valid)
        full = rows[self._sizes[rows] == HISTORY]
        if full.size:  # drop the oldest observation of a full series
            self._ratios[full, :-1] = self._ratios[full, 1:]
            self._dofs[full, :-1] = self._dofs[full, 1:]
            self._sizes[full] -= 1
        self._ratios[rows, self._sizes[rows]] = ratios[rows]
        self._dofs[rows, self._sizes[rows]] = dofs[rows]
        self._sizes[rows] += 1
        self._inflations = None

    def carry_history(self, previous: Dispersion) -> None:
        """Keep ``previous``'s observations (the stream's clustering does not change with
        a new reference) but not its last pane, whose bins were the old reference's."""
        if previous.columns == self.columns:
            self._ratios, self._dofs = previous._ratios.copy(), previous._dofs.copy()
            self._sizes, self.pairs = previous._sizes.copy(), previous.pairs
            self._inflations = None

    @property
    def settled(self) -> bool:
        """Whether enough panes were compared for the estimate to be trusted: the
        detector raises no alarm before (see the module doc)."""
        return self.pairs >= MIN_HISTORY

    def inflation(self, column: int) -> tuple[float, float]:
        """(distribution, missing share) inflation of ``column``; 1.0 without evidence."""
        distribution, missing = self.inflations()[column].tolist()
        return distribution, missing

    def inflations(self) -> FloatArray:
        """Every column's (distribution, missing share) inflation, ``columns x 2``,
        computed once per pane for all columns together."""
        if self._inflations is None:
            self._inflations = _estimates(self._ratios, self._dofs, self._sizes).reshape(-1, 2)
        return self._inflations

    def to_dict(self) -> dict[str, Any]:
        series = [[[r, d] for r, d in zip(ratios[:size].tolist(), dofs[:size].tolist(),
                                          strict=True)]
                  for ratios, dofs, size in zip(self._ratios, self._dofs, self._sizes.tolist(),
                                                strict=True)]
        return {
            "last_id": self.last_id,
            "pairs": self.pairs,
            "previous": None if self._previous is None else [
                [h.tolist(), m.tolist()] for h, m in zip(*self._previous, strict=True)],
            "history": [series[2 * c : 2 * c + 2] for c in range(self.columns)],
        }

    @classmethod
    def from_dict(cls, columns: int, data: dict[str, Any] | None) -> Dispersion:
        out = cls(columns)
        if not data:
            return out
        out.last_id = None if data["last_id"] is None else int(data["last_id"])
        out.pairs = int(data.get("pairs", 0))
        if data["previous"] is not None:
            width = max(len(h) for h, _ in data["previous"])
            histograms = np.zeros((columns, width), dtype=np.int64)
            for i, (h, _) in enumerate(data["previous"]):
                histograms[i, : len(h)] = h
            shares = np.array([m for _, m in data["previous"]], dtype=np.int64).reshape(-1, 2)
            out._previous = (histograms, shares)
        pairs = [series for column in data["history"] for series in column]
        for row, observations in enumerate(pairs):
            kept = observations[-HISTORY:]
            out._ratios[row, : len(kept)] = [float(r) for r, _ in kept]
            out._dofs[row, : len(kept)] = [int(d) for _, d in kept]
            out._sizes[row] = len(kept)
        return out


def _pad(histograms: IntArray, width: int) -> IntArray:
    """``histograms`` with zero columns added up to ``width`` (an empty bin in both panes
    is left out of the chi-square, so padding changes nothing)."""
    if histograms.shape[1] == width:
        return histograms
    return np.pad(histograms, ((0, 0), (0, width - histograms.shape[1])))


def _ratios(before: IntArray, now: IntArray) -> tuple[FloatArray, IntArray,
                                                      npt.NDArray[np.bool_]]:
    """Per row, one observation of ``φ``: the homogeneity chi-square of the two panes over
    its degrees of freedom (1.0 with none: both panes in one cell, say never missing),
    and whether there was one (both panes non-empty)."""
    valid = (before.sum(axis=1) > 0) & (now.sum(axis=1) > 0)
    statistic, dofs = chi2_homogeneity_rows(before, now)
    ratios = np.divide(statistic, dofs, out=np.ones_like(statistic), where=dofs > 0)
    return ratios, dofs, valid


def _row_medians(values: FloatArray, sizes: IntArray) -> FloatArray:
    """``statistics.median`` of the first ``sizes[i]`` entries of every row (NaN for an
    empty row): the middle value, or the mean of the two middle ones."""
    padded = np.where(np.arange(values.shape[1]) < sizes[:, None], values, np.inf)
    ordered = np.sort(padded, axis=1)
    rows = np.arange(values.shape[0])
    low = ordered[rows, np.maximum(sizes - 1, 0) // 2]
    high = ordered[rows, np.minimum(sizes // 2, values.shape[1] - 1)]
    return np.where(sizes > 0, (low + high) / 2, np.nan)


def _independent(statistic: FloatArray, dof: FloatArray) -> npt.NDArray[np.bool_]:
    """Whether observations of ``φ`` look like independent rows: their statistics summed
    against chi-square on their summed degrees of freedom (the sum of independent
    chi-squares) does not reject ``φ = 1`` at :data:`INDEPENDENCE_LEVEL`."""
    pvalue = special.chdtrc(np.maximum(dof, 1), statistic)
    return np.asarray((dof == 0) | (pvalue > INDEPENDENCE_LEVEL))


def _estimates(ratios: FloatArray, dofs: IntArray, sizes: IntArray) -> FloatArray:
    """The inflation of every series (row):

    - no observation: 1;
    - fewer than :data:`MIN_HISTORY`, or fewer than two kept: the largest observation;
    - the stream's kept observations (every series together) and the series' own
      consistent with independent rows: 1;
    - else the mean of the kept observations plus :data:`CONFIDENCE_Z` standard errors.

    An observation is kept, once a series holds :data:`MIN_HISTORY`, when it is within
    the median times chi-square's ``1 - SPIKE_TAIL`` quantile over its median, for the
    series' median degrees of freedom: the rest are where a real shift started.
    """
    present = np.arange(ratios.shape[1]) < sizes[:, None]
    settled = sizes >= MIN_HISTORY
    medians = _row_medians(dofs.astype(np.float64), sizes)
    dof = np.maximum(1.0, np.trunc(np.where(sizes > 0, medians, 1.0)))
    distinct, which = np.unique(dof, return_inverse=True)  # a series or two of dofs
    spread = (special.chdtri(distinct, SPIKE_TAIL) / special.chdtri(distinct, 0.5))[which]
    limit = _row_medians(ratios, sizes) * spread
    kept = present & settled[:, None] & (ratios <= limit[:, None])
    weighted = np.where(kept, ratios * dofs, 0.0)
    kept_dofs = np.where(kept, dofs, 0).sum(axis=1).astype(np.float64)
    stream = bool(_independent(np.array([weighted.sum()]), np.array([kept_dofs.sum()]))[0])
    own = _independent(weighted.sum(axis=1), kept_dofs)
    count = kept.sum(axis=1)
    mean = np.where(kept, ratios, 0.0).sum(axis=1) / np.maximum(count, 1)
    squares = np.where(kept, (ratios - mean[:, None]) ** 2, 0.0).sum(axis=1)
    bound = mean + CONFIDENCE_Z * np.sqrt(squares / np.maximum(count - 1, 1)) / np.sqrt(
        np.maximum(count, 1))
    largest = np.where(present, ratios, -np.inf).max(axis=1)
    out = np.where(count < 2, largest, np.where(stream & own, 1.0, bound))
    return np.where(sizes == 0, 1.0, np.maximum(out, 1.0))
