"""The statistics, computed from counts alone.

Each function here takes per-slot or per-bin counts and returns the same number that the
reference implementation computes from raw samples; the tests hold them to scipy on
random data.

>>> import numpy as np
>>> from driftloop.drift.stats import psi, js_distance
>>> round(psi(np.array([50, 50]), np.array([50, 50])), 12)
0.0
>>> round(js_distance(np.array([1, 0]), np.array([0, 1])), 12)
1.0
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


def ks_statistic(
    reference_cdf: FloatArray, slots: npt.NDArray[np.intp], counts: IntArray, m: int
) -> float:
    """Exact two-sample KS statistic of ``scipy.stats.ks_2samp`` from slot counts.

    ``reference_cdf[s]`` is the reference ECDF at slot ``s``; ``slots`` are the occupied
    window slots in increasing order with their ``counts``, ``m`` their total. Between two
    occupied slots the window ECDF is flat while the reference ECDF rises, so the largest
    gap on that stretch sits at one of its ends: the slot just before an occupied slot or
    the occupied slot itself. Evaluating only there is exact and costs O(occupied slots).
    """
    window_after = np.cumsum(counts) / m
    window_before = np.concatenate(([0.0], window_after[:-1]))
    gap_at = reference_cdf[slots] - window_after
    before = slots - 1
    has_before = before >= 0
    gap_before = reference_cdf[before[has_before]] - window_before[has_before]
    return float(max(np.abs(gap_at).max(), np.abs(gap_before).max(initial=0.0)))


def ks_pvalues(d: FloatArray, n: IntArray, m: IntArray) -> FloatArray:
    """Two-sided p-values of ``ks_2samp(method="asymp")`` for statistics ``d``.

    The same computation scipy makes: the one-sample Kolmogorov distribution at the
    effective sample size ``round(n * m / (n + m))``.
    """
    large = np.maximum(n, m).astype(np.float64)
    small = np.minimum(n, m).astype(np.float64)
    effective = np.round(large * small / (large + small))
    return np.clip(np.asarray(stats.kstwo.sf(d, effective), dtype=np.float64), 0.0, 1.0)


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


def chi2_pvalues(statistic: FloatArray, dof: IntArray) -> FloatArray:
    """Upper-tail chi-square probabilities; 1.0 where there are no degrees of freedom."""
    out = np.ones_like(statistic)
    ok = dof > 0
    out[ok] = special.chdtrc(dof[ok], statistic[ok])
    return out


def psi(reference: IntArray, current: IntArray, epsilon: float = PSI_EPSILON) -> float:
    """Population Stability Index, ``Σ (c − r) · ln(c / r)`` over bin proportions.

    Empty bins take the proportion ``epsilon`` (see :data:`PSI_EPSILON`).
    """
    r = reference / reference.sum()
    c = current / current.sum()
    r = np.where(r == 0.0, epsilon, r)
    c = np.where(c == 0.0, epsilon, c)
    return float(((c - r) * np.log(c / r)).sum())


def js_distance(reference: IntArray, current: IntArray) -> float:
    """Jensen–Shannon distance, base 2 (0..1), as ``scipy.spatial.distance.jensenshannon``."""
    p = reference / reference.sum()
    q = current / current.sum()
    mid = (p + q) / 2.0
    divergence = (special.rel_entr(p, mid).sum() + special.rel_entr(q, mid).sum()) / 2.0
    return float(np.sqrt(max(divergence, 0.0) / np.log(2.0)))


def total_variation(reference: IntArray, current: IntArray) -> float:
    """Half the L1 distance between the two distributions: the largest probability gap
    over any set of buckets, the categorical analogue of the KS statistic."""
    return float(np.abs(reference / reference.sum() - current / current.sum()).sum() / 2.0)
