"""The PrPl-EB confidence sequence: time-uniform coverage, width, and bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from driftloop.evaluation import ConfidenceSequence

STREAMS = 300
LENGTH = 2000


def bernoulli(rng: np.random.Generator, size: tuple[int, ...]) -> npt.NDArray[np.float64]:
    return (rng.random(size) < 0.3).astype(np.float64)


def beta(rng: np.random.Generator, size: tuple[int, ...]) -> npt.NDArray[np.float64]:
    return rng.beta(2.0, 5.0, size)


def three_point(rng: np.random.Generator, size: tuple[int, ...]) -> npt.NDArray[np.float64]:
    return rng.choice([0.0, 0.5, 1.0], size=size, p=[0.2, 0.7, 0.1])


DISTRIBUTIONS = [(bernoulli, 0.3), (beta, 2.0 / 7.0), (three_point, 0.45)]


@pytest.mark.parametrize("alpha", [0.05, 0.2])
@pytest.mark.parametrize(("draw", "true_mean"), DISTRIBUTIONS,
                         ids=[d.__name__ for d, _ in DISTRIBUTIONS])
def test_time_uniform_coverage(draw, true_mean: float, alpha: float) -> None:
    """The true mean leaves [lower, upper] at *some* time in at most ~alpha of streams.

    Monte-Carlo allowance: if the miss rate were exactly alpha, the observed share over
    300 independent streams has standard deviation sqrt(alpha (1 - alpha) / 300) (0.013 at
    alpha = 0.05); three of those is exceeded with probability < 0.2%. The seeds are
    fixed, so the test is deterministic. alpha = 0.2 makes the check sharper: a sequence
    that is too narrow shows up there first.
    """
    data = draw(np.random.default_rng(20240601), (STREAMS, LENGTH))
    missed = 0
    for stream in data:
        path = ConfidenceSequence(alpha, 0.0, 1.0).extend(stream)
        missed += bool(np.any((path.lower > true_mean) | (path.upper < true_mean)))
    allowance = 3.0 * math.sqrt(alpha * (1.0 - alpha) / STREAMS)
    assert missed / STREAMS <= alpha + allowance, f"missed in {missed} of {STREAMS} streams"


def hoeffding_width(n: int, alpha: float) -> float:
    """Width at time n of the predictable-mixture Hoeffding CS (Waudby-Smith & Ramdas,
    eq. 8): same betting form, but the bets ignore the variance."""
    t = np.arange(1, n + 1, dtype=np.float64)
    bets = np.minimum(np.sqrt(8.0 * math.log(2.0 / alpha) / (t * np.log1p(t))), 1.0)
    return float(2.0 * (math.log(2.0 / alpha) + np.sum(bets**2) / 8.0) / np.sum(bets))


def test_width_adapts_to_variance_and_beats_hoeffding() -> None:
    rng = np.random.default_rng(7)
    # Bernoulli(p) with p (1 - p) = 0.05.
    p = (1.0 - math.sqrt(1.0 - 4 * 0.05)) / 2.0
    data = (rng.random(5000) < p).astype(np.float64)
    cs = ConfidenceSequence(0.05, 0.0, 1.0)
    cs.extend(data)
    width = cs.upper - cs.lower
    hoeffding = hoeffding_width(5000, 0.05)
    # sigma / (1/2) = 0.45 asymptotically; allow for the variance estimate's slow start.
    assert width < 0.6 * hoeffding, (width, hoeffding)
    assert cs.lower <= p <= cs.upper


def test_width_shrinks_like_root_n() -> None:
    """Quadrupling n halves the width, up to the sqrt(log t) factor that pays for
    time-uniformity: the ratio should sit near 0.5 * sqrt(log 16000 / log 4000) = 0.54."""
    rng = np.random.default_rng(11)
    ratios = []
    for _ in range(20):
        path = ConfidenceSequence(0.05, 0.0, 1.0).extend(rng.beta(2.0, 5.0, 16000))
        widths = path.upper - path.lower
        ratios.append(widths[15999] / widths[3999])
    assert 0.45 < float(np.median(ratios)) < 0.6, ratios


def test_update_and_extend_agree() -> None:
    rng = np.random.default_rng(3)
    data = rng.uniform(-1.0, 1.0, 300)
    one_by_one = ConfidenceSequence(0.1, -1.0, 1.0)
    lowers, uppers = [], []
    for x in data:
        one_by_one.update(float(x))
        lowers.append(one_by_one.lower)
        uppers.append(one_by_one.upper)
    batched = ConfidenceSequence(0.1, -1.0, 1.0)
    first = batched.extend(data[:100])
    rest = batched.extend(data[100:])
    np.testing.assert_allclose(np.concatenate([first.lower, rest.lower]), lowers, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([first.upper, rest.upper]), uppers, atol=1e-12)
    assert batched.n == one_by_one.n == 300
    assert batched.mean == pytest.approx(float(np.mean(data)), abs=1e-12)


def test_rescaling_is_exact() -> None:
    """Data in [-1, 1] gives the same sequence as the same data mapped to [0, 1]."""
    data = np.random.default_rng(5).choice([-1.0, 0.0, 1.0], size=3000, p=[0.1, 0.8, 0.1])
    wide = ConfidenceSequence(0.05, -1.0, 1.0).extend(data)
    unit = ConfidenceSequence(0.05, 0.0, 1.0).extend((data + 1.0) / 2.0)
    np.testing.assert_allclose(wide.lower, 2.0 * unit.lower - 1.0, atol=1e-12)
    np.testing.assert_allclose(wide.upper, 2.0 * unit.upper - 1.0, atol=1e-12)
    np.testing.assert_allclose(wide.mean, 2.0 * unit.mean - 1.0, atol=1e-12)


def test_bounds_before_data_and_running_intersection() -> None:
    cs = ConfidenceSequence(0.05, -2.0, 3.0)
    assert (cs.n, cs.lower, cs.upper) == (0, -2.0, 3.0)
    assert math.isnan(cs.mean)
    path = cs.extend(np.random.default_rng(1).uniform(-2.0, 3.0, 2000))
    assert np.all(np.diff(path.lower) >= 0.0) and np.all(np.diff(path.upper) <= 0.0)
    assert -2.0 <= cs.lower <= cs.upper <= 3.0
    assert cs.extend([]).lower.size == 0 and cs.n == 2000


@pytest.mark.parametrize("bad", [1.5, -0.1, math.nan])
def test_rejects_observations_outside_the_range(bad: float) -> None:
    cs = ConfidenceSequence(0.05, 0.0, 1.0)
    with pytest.raises(ValueError, match="outside"):
        cs.extend([0.5, bad])
    assert cs.n == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"alpha": 0.0, "low": 0.0, "high": 1.0}, "alpha"),
    ({"alpha": 0.05, "low": 1.0, "high": 1.0}, "low < high"),
    ({"alpha": 0.05, "low": 0.0, "high": math.inf}, "low < high"),
    ({"alpha": 0.05, "low": 0.0, "high": 1.0, "c": 1.0}, "c must"),
])
def test_validates_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ConfidenceSequence(**kwargs)
