"""The statistics, computed from counts alone.

Each function here takes per-slot or per-bin counts and returns the same number that the
reference implementation computes from raw samples; the tests hold them to scipy on
random data.

>>> import numpy as np
>>> from driftloop.drift.stats import psi, js_distance
>>> float(psi(np.array([50, 50]), np.array([50, 50])))
0.0
>>> float(js_distance(np.array([1, 0]), np.array([0, 1])))
1.0
>>> js_distance(np.array([[1, 0], [1, 1]]), np.array([[0, 1], [1, 1]]))  # one row per feature
array([1., 0.])
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special, stats

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Proportion that replaces an empty bin in PSI, so ``ln(c / r)`` stays finite. The same
#: 1e-4 that Evidently uses, so PSI values read the same across the two tools.
PSI_EPSILON = 1e-4


def ks_statistics(
    reference_cdf: FloatArray, cdf_index: npt.NDArray[np.intp], counts: IntArray,
    starts: npt.NDArray[np.intp],
) -> FloatArray:
    """Exact two-sample KS statistics of ``scipy.stats.ks_2samp``, for several features at
    once, from slot counts.

    Each feature is a run of the arrays starting at ``starts`` (runs are non-empty).
    ``reference_cdf`` holds the features' reference ECDFs back to back, each led by a 0;
    ``cdf_index[j]`` points at the entry just *before* occupied slot j's ECDF value, so
    ``reference_cdf[cdf_index + 1]`` is the reference ECDF at the slot and
    ``reference_cdf[cdf_index]`` the one at the slot below; slots increase within a run.

    Between two occupied slots the window ECDF is flat while the reference ECDF rises, so
    the largest gap on that stretch sits at one of its ends: the slot just below an
    occupied slot or the occupied slot itself. Evaluating only there is exact and costs
    O(occupied slots). The ECDFs are integer counts divided by the sample size, as scipy
    computes them, so the result is equal to the last bit.
    """
    lengths = np.diff(np.append(starts, counts.size))
    running = np.cumsum(counts)
    after = running - np.repeat(running[starts] - counts[starts], lengths)
    m = np.repeat(after[starts + lengths - 1], lengths)
    gaps = np.maximum(np.abs(np.take(reference_cdf, cdf_index + 1) - after / m),
                      np.abs(np.take(reference_cdf, cdf_index) - (after - counts) / m))
    return np.asarray(np.maximum.reduceat(gaps, starts))


def bin_counts(
    edges: npt.NDArray[np.intp], slots: npt.NDArray[np.intp], counts: IntArray
) -> IntArray:
    """Per-bin totals of sorted slot counts, for bins that are runs of consecutive slots.

    ``edges[b]`` is the first slot of bin ``b`` and ``edges[-1]`` one past the last slot;
    a binary search per edge replaces a pass over every occupied slot.
    """
    cumulative = np.concatenate(([0], np.cumsum(counts)))
    return np.diff(cumulative[np.searchsorted(slots, edges, side="left")])


#: scipy's exact KS p-value costs ~0.2-12 ms per feature at a window of 10k values
#: (Durbin's matrix method for large p, the exact Smirnov sum for small p), far too slow to
#: run for 20 features at every pane. An alarm decision only needs to know on which side of
#: a level the p-value falls, so :func:`ks_pvalue_above` settles it with two cheap facts and
#: computes the exact value only near the level:
#:
#: - Massart's inequality, exact for every n: ``p ≤ 2·exp(−2·n·D²)``;
#: - Stephens' approximation ``kolmogorov((√n + 0.12 + 0.11/√n)·D)``, which stays within
#:   a factor of 2 of the exact p-value for n > 140 and p ≥ 1e-10 (tests check a grid).
STEPHENS_MIN_PVALUE = 1e-10


def ks_effective_size(n: int, m: int) -> float:
    """scipy's effective sample size for two samples: ``round(n·m / (n + m))``."""
    large, small = float(max(n, m)), float(min(n, m))
    return float(np.round(large * small / (large + small)))


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Two-sided p-value of ``ks_2samp(method="asymp")``: the same computation scipy makes,
    the one-sample Kolmogorov distribution at the effective sample size."""
    return float(np.clip(stats.kstwo.sf(d, ks_effective_size(n, m)), 0.0, 1.0))


def ks_pvalue_stephens(d: float, size: float) -> float:
    """Stephens' approximation to the KS p-value at effective sample size ``size``."""
    root = np.sqrt(size)
    return float(special.kolmogorov((root + 0.12 + 0.11 / root) * d))


def ks_pvalue_above(d: float, n: int, m: int, level: float) -> bool:
    """Whether the p-value of ``d`` exceeds ``level``; exact, and cheap unless the p-value
    is close to ``level`` (see :data:`STEPHENS_MIN_PVALUE`)."""
    size = ks_effective_size(n, m)
    if size > 140:
        if 2.0 * np.exp(-2.0 * size * d * d) <= level:
            return False
        approx = ks_pvalue_stephens(d, size)
        if approx >= STEPHENS_MIN_PVALUE and approx > 2.0 * level:
            return True
    return ks_pvalue(d, n, m) > level


def chi2_homogeneity(reference: IntArray, current: IntArray) -> tuple[float, int]:
    """Pearson chi-square statistic and degrees of freedom of a 2×k homogeneity table.

    Buckets empty in both samples are left out, as ``scipy.stats.chi2_contingency``
    requires; no continuity correction is applied.
    """
    keep = (reference + current) > 0
    table = np.vstack([reference[keep], current[keep]]).astype(np.float64)
    if table.shape[1] < 2:
        return 0.0, 0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    return float(((table - expected) ** 2 / expected).sum()), int(table.shape[1] - 1)


def chi2_pvalue(statistic: float, dof: int) -> float:
    """Upper-tail chi-square probability; 1.0 when there are no degrees of freedom."""
    return float(special.chdtrc(dof, statistic)) if dof > 0 else 1.0


def _proportions(counts: IntArray) -> FloatArray:
    return np.asarray(counts / counts.sum(axis=-1, keepdims=True), dtype=np.float64)


# The three distances below take one histogram per row (the last axis is the bins) so
# that a detector computes them for every feature in one pass; rows may be zero-padded to
# a common width, as an empty bin in both adds nothing to any of them.


def psi(reference: IntArray, current: IntArray, epsilon: float = PSI_EPSILON) -> FloatArray:
    """Population Stability Index, ``Σ (c − r) · ln(c / r)`` over bin proportions.

    Empty bins take the proportion ``epsilon`` (see :data:`PSI_EPSILON`).
    """
    r = _proportions(reference)
    c = _proportions(current)
    r = np.where(r == 0.0, epsilon, r)
    c = np.where(c == 0.0, epsilon, c)
    return np.asarray(((c - r) * np.log(c / r)).sum(axis=-1))


def js_distance(reference: IntArray, current: IntArray) -> FloatArray:
    """Jensen–Shannon distance, base 2 (0..1), as ``scipy.spatial.distance.jensenshannon``."""
    p = _proportions(reference)
    q = _proportions(current)
    mid = (p + q) / 2.0
    divergence = (special.rel_entr(p, mid).sum(axis=-1)
                  + special.rel_entr(q, mid).sum(axis=-1)) / 2.0
    return np.asarray(np.sqrt(np.maximum(divergence, 0.0) / np.log(2.0)))


def total_variation(reference: IntArray, current: IntArray) -> FloatArray:
    """Half the L1 distance between the two distributions: the largest probability gap
    over any set of buckets, the categorical analogue of the KS statistic."""
    return np.asarray(np.abs(_proportions(reference) - _proportions(current)).sum(axis=-1) / 2)
