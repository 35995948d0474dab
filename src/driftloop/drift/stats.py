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
from scipy import special

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Proportion that replaces an empty bin in PSI, so ``ln(c / r)`` stays finite. The same
#: 1e-4 that Evidently uses, so PSI values read the same across the two tools.
PSI_EPSILON = 1e-4


def ks_effective_size(n: npt.ArrayLike, m: npt.ArrayLike) -> FloatArray:
    """scipy's effective sample size for two samples: ``round(n·m / (n + m))``."""
    large = np.maximum(n, m).astype(np.float64)
    small = np.minimum(n, m).astype(np.float64)
    return np.asarray(np.round(large * small / (large + small)))


def ks_pvalues(d: npt.ArrayLike, n: npt.ArrayLike, m: npt.ArrayLike) -> FloatArray:
    """Two-sided p-values of ``ks_2samp(method="asymp")`` for many statistics at once.

    scipy evaluates the one-sample Kolmogorov distribution at the effective sample size,
    ``kstwo.sf(d, round(n·m / (n + m)))``, choosing a method by region (Simard & L'Ecuyer
    2011). :func:`kolmogorov_sf` makes the same choices with the same formulas, vectorised.
    """
    return kolmogorov_sf(np.asarray(d, dtype=np.float64), ks_effective_size(n, m))


def ks_pvalue(d: float, n: int, m: int) -> float:
    """:func:`ks_pvalues` for one statistic."""
    return float(ks_pvalues(np.array([d]), n, m)[0])


#: From this effective sample size on, Pelz–Good replaces Durbin's matrix method in the
#: small-D corner (see :func:`kolmogorov_sf`).
PELZ_GOOD_MIN_N = 300

_PI2, _PI4, _PI6 = np.pi**2, np.pi**4, np.pi**6
_SQRT2PI, _SQRT3 = np.sqrt(2.0 * np.pi), np.sqrt(3.0)


def kolmogorov_sf(x: FloatArray, n: FloatArray) -> FloatArray:
    """``scipy.stats.kstwo.sf(x, n)`` for arrays, branch for branch as scipy 1.13-1.17's
    ``_kolmogn(n, x, cdf=False)``:

    - ``x ≥ 1``: 0; ``x ≤ 0`` or ``n·x ≤ 1/2``: 1; ``n·x ≥ n − 1``: ``2·(1 − x)^n``;
    - ``x ≥ 1/2``, or ``n > 140`` and ``n·x² ≥ 2.2``: Miller's ``2·smirnov(n, x)``, with
      the one-sided tail by :func:`smirnov_sf` (0 from ``n·x² ≥ 370``);
    - ``n > 140``, ``n·x² < 2.2``: one minus the Pelz–Good expansion,
      :func:`_pelz_good_cdf`, which is scipy's formula evaluated for all features
      together. scipy itself uses it only where ``n·x^1.5 > 1.4`` and computes the corner
      below (small D, p-value above 0.96) by Durbin's matrix method, 20-200 ms a value;
      there Pelz–Good differs from it by at most 4e-7 from ``n ≥ 300``
      (:data:`PELZ_GOOD_MIN_N`), within the issue's 1e-6 relative bound;
    - the rest (``n ≤ 140``, ``1/2 < n·x ≤ 1``, the corner below ``n = 300``) is handed
      to scipy itself.

    The tests hold the result to ``kstwo.sf`` on a grid of n and x: within 1e-12 absolute
    outside the corner, and within 1e-9 absolute or 1e-6 relative everywhere.
    """
    x, n = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(n, dtype=np.float64))
    out = np.full(x.shape, np.nan)
    t = n * x
    nxx = t * x
    todo = np.ones(x.shape, dtype=bool)

    def settle(where: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        chosen = todo & where
        todo[chosen] = False
        return chosen

    out[settle(x >= 1.0)] = 0.0
    out[settle((x <= 0.0) | (t <= 0.5))] = 1.0
    small = settle(t <= 1.0)
    edge = settle(t >= n - 1)
    out[edge] = 2.0 * (1.0 - x[edge]) ** n[edge]
    miller = settle(x >= 0.5)
    small |= settle(n <= 140)
    out[settle(nxx >= 370.0)] = 0.0
    miller |= settle(nxx >= 2.2)
    few = miller & (n <= 140)  # few terms: scipy's exact sum is cheap
    out[few] = 2.0 * special.smirnov(n[few], x[few])
    many = miller & ~few
    if many.any():
        out[many] = 2.0 * smirnov_sf(n[many], x[many])
    small |= settle((n < PELZ_GOOD_MIN_N) & (n * x**1.5 <= 1.4))
    if todo.any():
        out[todo] = 1.0 - _pelz_good_cdf(x[todo], n[todo])
    if small.any():
        # Imported here, not at the top: scipy.stats takes ~1 s to import on a busy machine,
        # every server worker imports the drift core at start-up, and only this rare
        # branch (small windows, or D in the small-n corner) needs it.
        from scipy import stats  # noqa: PLC0415

        out[small] = stats.kstwo.sf(x[small], n[small])
    return np.asarray(np.clip(out, 0.0, 1.0))


#: Quadrature nodes per statistic in :func:`smirnov_sf`, and the most terms it adds one
#: by one instead.
SMIRNOV_NODES = 257
SMIRNOV_TERMS = 2048


def smirnov_sf(n: FloatArray, x: FloatArray) -> FloatArray:
    """The one-sided tail ``P(D⁺_n ≥ x)`` of ``scipy.special.smirnov``, for ``n·x > 1``.

    Smirnov–Birnbaum–Tingey's exact sum ``x·Σ_j C(n,j)·(1−x−j/n)^(n−j)·(x+j/n)^(j−1)``
    over ``0 ≤ j ≤ n(1−x)`` has ~n terms; scipy adds all of them in double-double
    arithmetic (~35 ms at n = 9,000, 13 s for 60 values at n = 100,000). The summand is a
    smooth (analytic) bump of width ``σ ≈ √n / (4x)`` in ``j`` around ``n(1/2 − x)``.
    Where ``centre ± 14σ`` holds at most :data:`SMIRNOV_TERMS` terms they are added one by
    one. Otherwise (n beyond ~1,000) the bump also vanishes at both ends of the range
    (``(1 − x)^n ≤ e^(−47)`` at ``j = 0``), so by Poisson summation the sum equals the
    integral of the summand up to terms of order ``exp(−2π²σ²)``, and the trapezoidal rule
    on :data:`SMIRNOV_NODES` nodes (several per σ) computes that integral to the same
    order. Log-gamma cancellation bounds the relative error near 1e-11 at n = 30,000
    (tests: within 1e-9 relative of scipy wherever the tail exceeds 1e-200).
    """
    top = n * (1.0 - x)
    sigma = np.sqrt(n) / (4.0 * x)
    centre = n * (0.5 - x)
    lo = np.clip(centre - 14.0 * sigma, 0.0, top)
    span = np.clip(centre + 14.0 * sigma, 0.0, top) - lo
    out = np.empty(n.shape)
    few = span <= SMIRNOV_TERMS
    if few.any():
        u = np.floor(lo[few])[:, None] + np.arange(SMIRNOV_TERMS + 1, dtype=np.float64)
        out[few] = _smirnov_terms(n[few], x[few], u, np.floor(top[few])).sum(axis=1)
    many = ~few
    if many.any():
        step = span[many] / (SMIRNOV_NODES - 1)
        u = lo[many][:, None] + step[:, None] * np.arange(SMIRNOV_NODES, dtype=np.float64)
        terms = _smirnov_terms(n[many], x[many], u, top[many])
        out[many] = (terms.sum(axis=1) - (terms[:, 0] + terms[:, -1]) / 2) * step
    return out


def _smirnov_terms(n: FloatArray, x: FloatArray, u: FloatArray, top: FloatArray) -> FloatArray:
    """Summands ``x·C(n,u)·(1−x−u/n)^(n−u)·(x+u/n)^(u−1)`` at ``u`` (one row per
    statistic), zero beyond ``top``."""
    n, x, top = n[:, None], x[:, None], top[:, None]
    inside = u <= top
    u = np.where(inside, u, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_terms = (np.log(x) + special.gammaln(n + 1) - special.gammaln(u + 1)
                     - special.gammaln(n - u + 1)
                     + special.xlogy(n - u, np.maximum(1.0 - x - u / n, 0.0))
                     + (u - 1.0) * np.log(x + u / n))
    return np.where(inside, np.exp(log_terms), 0.0)


def _pelz_good_cdf(x: FloatArray, n: FloatArray) -> FloatArray:
    """Pelz–Good's approximation to P(D_n ≤ x), as ``scipy.stats._ksstats._kolmogn_PelzGood``
    (Pelz & Good 1976): ``K0(z) + K1(z)/√n + K2(z)/n + K3(z)/n^1.5`` at ``z = x·√n``, each
    term a theta-function series over the odd integers ``m = 2k − 1``, ``k ≤ ⌈16z/π⌉``."""
    z = np.sqrt(n) * x
    z2, z4, z6 = z**2, z**4, z**6
    qlog = -_PI2 / 8 / z2
    vanishing = qlog < -708  # scipy: the CDF is 0 there
    z = np.where(vanishing, 1.0, z)
    z2, z4, z6, qlog = z**2, z**4, z**6, np.where(vanishing, -1.0, qlog)
    maxk = np.ceil(16 * z / np.pi)
    k = np.arange(1, int(maxk.max()) + 1, dtype=np.float64)[:, None]
    live = k <= maxk
    m2 = (2 * k - 1) ** 2
    m4, m6 = m2**2, m2**3
    weight = np.where(live, np.exp(qlog * m2), 0.0)
    k1 = -z2 + _PI2 / 4 * m2
    k2 = (6 * z6 + 2 * z4) + (2 * z4 - 5 * z2) * _PI2 / 4 * m2 + _PI4 * (1 - 2 * z2) / 16 * m4
    k3 = ((-30 * z6 - 90 * z**8) + _PI2 * (135 * z4 - 96 * z6) / 4 * m2
          + _PI4 * (-60 * z2 + 212 * z4) / 16 * m4 + _PI6 * (5 - 30 * z2) / 64 * m6)
    term0 = weight.sum(axis=0) * _SQRT2PI / z
    term1 = (k1 * weight).sum(axis=0) * _SQRT2PI / (6 * z4)
    term2 = (k2 * weight).sum(axis=0) * _SQRT2PI / (72 * z**7)
    term3 = (k3 * weight).sum(axis=0) * _SQRT2PI / (6480 * z**10)
    # The second series runs over all integers k: (π²k²)·q^(k²), q = exp(−π²/(2z²)).
    powers = np.where(live, np.exp(-_PI2 / 2 / z2 * k**2), 0.0)
    term2 += (k**2 * powers).sum(axis=0) * _PI2 * _SQRT2PI / (-36 * z**3)
    root3z = _SQRT3 * z
    term3 += ((root3z + np.pi * k) * (root3z - np.pi * k) * k**2 * powers).sum(axis=0) \
        * _PI2 * _SQRT2PI / (216 * z6)
    cdf = term0 + term1 / np.sqrt(n) + term2 / n + term3 / n**1.5
    return np.asarray(np.where(vanishing, 0.0, cdf))


def chi2_homogeneity(reference: IntArray, current: IntArray) -> tuple[float, int]:
    """Pearson chi-square statistic and degrees of freedom of a 2×k homogeneity table.

    Buckets empty in both samples are left out, as ``scipy.stats.chi2_contingency``
    requires; no continuity correction is applied.
    """
    statistic, dof = chi2_homogeneity_rows(reference[np.newaxis], current[np.newaxis])
    return float(statistic[0]), int(dof[0])


def chi2_homogeneity_rows(reference: IntArray, current: IntArray) -> tuple[FloatArray, IntArray]:
    """:func:`chi2_homogeneity` of many tables at once, one per row (the last axis is the
    buckets; rows may be zero-padded to a common width): statistics and degrees of freedom.
    """
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    both = r + c
    keep = both > 0
    dof = keep.sum(axis=-1) - 1
    total = both.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_r = r.sum(axis=-1, keepdims=True) * both / total
        expected_c = c.sum(axis=-1, keepdims=True) * both / total
        terms = (r - expected_r) ** 2 / expected_r + (c - expected_c) ** 2 / expected_c
    statistic = np.where(keep, terms, 0.0).sum(axis=-1)
    tested = dof >= 1
    return np.where(tested, statistic, 0.0), np.where(tested, dof, 0).astype(np.int64)


def chi2_pvalue(statistic: float, dof: int) -> float:
    """Upper-tail chi-square probability; 1.0 when there are no degrees of freedom."""
    return float(special.chdtrc(dof, statistic)) if dof > 0 else 1.0


def chi2_pvalues(statistic: FloatArray, dof: IntArray) -> FloatArray:
    """:func:`chi2_pvalue` of many statistics at once."""
    return np.where(dof > 0, special.chdtrc(np.maximum(dof, 1), statistic), 1.0)


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
