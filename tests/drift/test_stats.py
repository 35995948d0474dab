"""The count-based statistics agree with scipy on random data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, kstwo
from tests.drift.helpers import direct_psi

from driftloop.drift.stats import (
    STEPHENS_MIN_PVALUE,
    chi2_homogeneity,
    chi2_pvalue,
    js_distance,
    ks_pvalue,
    ks_pvalue_above,
    ks_pvalue_stephens,
    psi,
    total_variation,
)


@st.composite
def histogram_pair(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Two count vectors over the same bins, neither empty (bins may be empty in both)."""
    bins = draw(st.integers(2, 12))
    counts = st.lists(st.integers(0, 50), min_size=bins, max_size=bins).filter(any)
    return np.array(draw(counts)), np.array(draw(counts))


@settings(max_examples=200, deadline=None)
@given(histogram_pair())
def test_js_distance_matches_scipy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    r, c = pair
    assert abs(js_distance(r, c) - jensenshannon(r, c, base=2)) < 1e-12


@settings(max_examples=200, deadline=None)
@given(histogram_pair())
def test_psi_matches_term_by_term_formula(pair: tuple[np.ndarray, np.ndarray]) -> None:
    r, c = pair
    assert abs(psi(r, c) - direct_psi(r, c)) < 1e-9


@settings(max_examples=200, deadline=None)
@given(histogram_pair())
def test_chi2_matches_chi2_contingency(pair: tuple[np.ndarray, np.ndarray]) -> None:
    r, c = pair
    statistic, dof = chi2_homogeneity(r, c)
    keep = (r + c) > 0
    if keep.sum() < 2:
        assert (statistic, dof) == (0.0, 0)
        return
    expected = chi2_contingency(np.vstack([r[keep], c[keep]]), correction=False)
    assert dof == expected.dof
    assert abs(statistic - expected.statistic) <= 1e-9 * max(1.0, expected.statistic)
    pvalue = chi2_pvalue(statistic, dof)
    assert abs(pvalue - expected.pvalue) < 1e-9


def test_identical_distributions_have_zero_distance() -> None:
    r = np.array([10, 20, 30, 0])
    assert psi(r, r * 3) == 0.0
    assert js_distance(r, r * 3) == 0.0
    assert total_variation(r, r * 3) == 0.0


def test_psi_smooths_empty_bins_with_documented_epsilon() -> None:
    # All mass moves into a bin the reference never used: finite, and exactly the formula.
    r, c = np.array([100, 0]), np.array([0, 100])
    expected = (1e-4 - 1.0) * np.log(1e-4 / 1.0) + (1.0 - 1e-4) * np.log(1.0 / 1e-4)
    assert psi(r, c) == expected


def test_total_variation_is_largest_probability_gap() -> None:
    assert total_variation(np.array([50, 50, 0]), np.array([0, 50, 50])) == 0.5


@pytest.mark.parametrize("n", [141, 300, 1000, 5000, 9091, 30000])
def test_stephens_approximation_is_within_a_factor_of_two_where_it_is_trusted(n: int) -> None:
    root = np.sqrt(n)
    # lambda = 3.6 is where the approximation reaches ~1e-11, below STEPHENS_MIN_PVALUE.
    for lam in np.linspace(0.2, 3.6, 18):
        d = lam / (root + 0.12 + 0.11 / root)
        approx = ks_pvalue_stephens(d, n)
        assert approx / 2 <= kstwo.sf(d, n) <= approx * 2
    assert ks_pvalue_stephens(3.6 / (root + 0.12 + 0.11 / root), n) < STEPHENS_MIN_PVALUE


@settings(max_examples=100, deadline=None)
@given(st.floats(0.001, 0.2), st.integers(141, 5000))
def test_massart_bound_holds(d: float, n: int) -> None:
    assert kstwo.sf(d, n) <= 2 * np.exp(-2 * n * d * d) + 1e-15


@settings(max_examples=300, deadline=None)
@given(st.floats(0.0, 0.3), st.integers(100, 20000), st.integers(1, 20000),
       st.sampled_from([1e-6, 1e-4, 1e-3, 0.01, 0.05, 0.5]))
def test_cheap_pvalue_decision_agrees_with_the_exact_value(
    d: float, n: int, m: int, level: float
) -> None:
    assert ks_pvalue_above(d, n, m, level) == (ks_pvalue(d, n, m) > level)
