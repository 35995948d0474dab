"""A time-uniform confidence sequence for the mean of bounded observations.

The shadow gate looks at its evidence after *every* labelled request and stops as soon as
it is convinced. A fixed-n confidence interval checked that often would be wrong far more
than ``alpha`` of the time; a confidence sequence is valid uniformly over time, so peeking
after each observation, and stopping whenever, keeps the error at ``alpha``.

This is the predictable plug-in empirical-Bernstein confidence sequence (PrPl-EB) of
Waudby-Smith & Ramdas, "Estimating means of bounded random variables by betting",
JRSS-B 2023, Theorem 2 and eqs. (13)-(15), two-sided. For observations ``x_i`` rescaled
to [0, 1], with ``L = log(2 / alpha)``:

- ``mu_t = (1/2 + sum_{i<=t} x_i) / (t + 1)`` and
  ``var_t = (1/4 + sum_{i<=t} (x_i - mu_i)^2) / (t + 1)``: regularised running mean and
  variance (``mu_0 = 1/2``, ``var_0 = 1/4``);
- the bet ``lambda_t = min(sqrt(2 L / (var_{t-1} t log(1 + t))), c)`` uses only the past;
- the set at time t is ``sum lambda_i x_i / sum lambda_i`` plus or minus
  ``(L + sum v_i psi(lambda_i)) / sum lambda_i`` with ``v_i = 4 (x_i - mu_{i-1})^2`` and
  ``psi(l) = (-log(1 - l) - l) / 4``.

Every term is a running sum, so the state is O(1), and a batch of observations is
handled at once with cumulative sums: :meth:`ConfidenceSequence.extend` is the only
implementation of the formula, and :meth:`~ConfidenceSequence.update` calls it. The width
adapts to the variance, which is why it beats Hoeffding's bound on the low-variance paired
differences the gate sees (two models agree on most rows).

Since every member of the sequence covers the mean at once (with probability at least
``1 - alpha``), so does their running intersection: :attr:`lower` is the largest lower
bound so far and :attr:`upper` the smallest upper bound, which makes both monotone.

>>> cs = ConfidenceSequence(alpha=0.05, low=0.0, high=1.0)
>>> path = cs.extend([0, 1] * 500)
>>> cs.n, round(cs.mean, 3), bool(cs.lower < 0.5 < cs.upper)
(1000, 0.5, True)
>>> bool(path.lower[-1] == cs.lower)
True
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class Path(NamedTuple):
    """The sequence after each observation of one :meth:`ConfidenceSequence.extend` call,
    in the original units: sample mean, running-intersection lower and upper bounds."""

    mean: FloatArray
    lower: FloatArray
    upper: FloatArray


class ConfidenceSequence:
    """PrPl-EB confidence sequence for the mean of observations in ``[low, high]``.

    ``alpha`` is the two-sided error: with probability at least ``1 - alpha`` the mean lies
    in ``[lower, upper]`` at every time at once, so each one-sided bound fails with
    probability at most ``alpha / 2``. ``c`` truncates the bets; the paper suggests 1/2 or
    3/4, and smaller values are more robust early on at a small cost in width later.
    """

    def __init__(self, alpha: float, low: float, high: float, c: float = 0.5) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"need finite low < high, got low={low!r}, high={high!r}")
        if not 0.0 < c < 1.0:
            raise ValueError(f"c must be in (0, 1), got {c!r}")
        self.alpha = alpha
        self.low = low
        self.high = high
        self.c = c
        self._log_term = math.log(2.0 / alpha)
        # Running sums, all in [0, 1] units.
        self._n = 0
        self._sum = 0.0  # sum x_i
        self._sq = 0.0  # sum (x_i - mu_i)^2
        self._bets = 0.0  # sum lambda_i
        self._bet_x = 0.0  # sum lambda_i x_i
        self._penalty = 0.0  # sum v_i psi(lambda_i)
        self._lower = 0.0
        self._upper = 1.0

    @property
    def n(self) -> int:
        return self._n

    @property
    def mean(self) -> float:
        """Sample mean in original units; NaN before any observation."""
        return float(self._unscale(self._sum / self._n)) if self._n else math.nan

    @property
    def lower(self) -> float:
        return float(self._unscale(self._lower))

    @property
    def upper(self) -> float:
        return float(self._unscale(self._upper))

    def update(self, x: float) -> None:
        """Add one observation."""
        self.extend(np.array([x], dtype=np.float64))

    def extend(self, xs: npt.ArrayLike) -> Path:
        """Add observations in order; return the sequence after each of them.

        The result equals calling :meth:`update` once per value (up to float rounding),
        in O(len(xs)) numpy work. Values outside ``[low, high]`` or NaN raise ValueError,
        since one of them would void the guarantee.
        """
        x = self._scale(xs)
        if x.size == 0:
            empty = np.empty(0)
            return Path(empty, empty, empty)
        t = self._n + np.arange(1, x.size + 1, dtype=np.float64)
        sums = self._sum + np.cumsum(x)
        mu = (0.5 + sums) / (t + 1.0)
        sq = self._sq + np.cumsum((x - mu) ** 2)
        mu_prev = np.concatenate(([(0.5 + self._sum) / (self._n + 1.0)], mu[:-1]))
        var_prev = np.concatenate(([(0.25 + self._sq) / (self._n + 1.0)],
                                   ((0.25 + sq) / (t + 1.0))[:-1]))
        bets = np.minimum(np.sqrt(2.0 * self._log_term / (var_prev * t * np.log1p(t))), self.c)
        # v_i * psi(lambda_i): the factors 4 and 1/4 cancel.
        penalty = self._penalty + np.cumsum((x - mu_prev) ** 2 * (-np.log1p(-bets) - bets))
        bet_sums = self._bets + np.cumsum(bets)
        bet_x = self._bet_x + np.cumsum(bets * x)
        centre = bet_x / bet_sums
        margin = (self._log_term + penalty) / bet_sums
        lower = np.maximum(np.maximum.accumulate(centre - margin), self._lower)
        upper = np.minimum(np.minimum.accumulate(centre + margin), self._upper)

        self._n += x.size
        self._sum, self._sq = float(sums[-1]), float(sq[-1])
        self._bets, self._bet_x, self._penalty = (float(bet_sums[-1]), float(bet_x[-1]),
                                                  float(penalty[-1]))
        self._lower, self._upper = float(lower[-1]), float(upper[-1])
        return Path(self._unscale(sums / t), self._unscale(lower), self._unscale(upper))

    def _scale(self, xs: npt.ArrayLike) -> FloatArray:
        x = np.asarray(xs, dtype=np.float64).reshape(-1)
        outside = ~((x >= self.low) & (x <= self.high))  # also catches NaN
        if outside.any():
            bad = x[outside][0]
            raise ValueError(f"observation {bad!r} is outside [{self.low}, {self.high}]")
        # Rounding is monotone, so (x - low) / (high - low) stays inside [0, 1].
        return (x - self.low) / (self.high - self.low)

    def _unscale(self, y: npt.ArrayLike) -> FloatArray:
        return np.clip(self.low + np.asarray(y) * (self.high - self.low), self.low, self.high)
