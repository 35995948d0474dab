"""Finding live values among a reference's sorted distinct values.

``np.searchsorted`` is a binary search per value whose branches the processor cannot
predict: on 1,000-value batches over a reference of a few hundred to a few thousand
distinct values it cost 60-150 µs per feature, most of what ``observe()`` spent. For
such references a :class:`Grid` answers the same question with a few whole-array steps
and no branch per value: the value's bucket on a uniform grid over the reference's range
gives the first reference value it can be, and a few vectorised comparisons finish the
count (measured 10-20 µs for the same batches).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]

#: References with more distinct values than this are searched with sorted keys: the
#: binary searches then walk the reference in order instead of missing the cache at
#: random (measured: 3x faster for 1e6 values in 1e6, 1.3x for 1,000 in 100k). Up to it,
#: a :class:`Grid` is tried (at most ``4 · 8 · 4096`` bytes of bucket starts).
SORTED_LOOKUP_MIN = 4096
#: Below this many distinct values a binary search has few enough levels to be cheaper.
GRID_MIN = 16
#: Grid buckets per distinct reference value tried, in order; the first whose fullest
#: bucket holds at most :data:`GRID_MAX_STEPS` reference values is kept (measured: six
#: vectorised steps still cost a third of a binary search per value).
GRID_DENSITIES = (2, 8)
GRID_MAX_STEPS = 6
#: Reference values left out of the grid's range at each end (one in this many), so that
#: a few outliers do not stretch it; live values outside the range are binary-searched.
GRID_TRIM = 64


@dataclass(frozen=True)
class Grid:
    """A uniform grid over ``[low, high]``: ``starts[b]`` reference values lie below
    bucket ``b``, and no bucket holds more than ``steps`` of them."""

    low: float
    high: float
    scale: float
    starts: Indices  # one per bucket, and the count of values up to ``high`` last
    steps: int

    @property
    def top(self) -> int:
        """The last bucket."""
        return self.starts.size - 2

    @property
    def ceiling(self) -> float:
        """Values are clipped to ``[low, ceiling]`` before they are bucketed, so that no
        huge value overflows."""
        return self.low + self.top / self.scale

    @classmethod
    def build(cls, values: FloatArray) -> Grid | None:
        """A grid for sorted distinct ``values``, or None when none is cheap enough (a
        few reference values, or a range no tried density spreads thin enough)."""
        k = values.size
        if not GRID_MIN <= k <= SORTED_LOOKUP_MIN:
            return None
        trim = k // GRID_TRIM
        low, high = float(values[trim]), float(values[k - 1 - trim])
        core = values[trim : k - trim]
        for density in GRID_DENSITIES:
            buckets = density * core.size
            scale = buckets / (high - low)
            if not (np.isfinite(scale) and scale > 0):
                return None
            starts = trim + np.searchsorted(
                _bucket(core, low, low + (buckets - 1) / scale, scale, buckets - 1),
                np.arange(buckets + 1))
            steps = int(np.diff(starts).max())
            if steps <= GRID_MAX_STEPS:
                return cls(low, high, scale, starts.astype(np.intp), steps)
        return None

    def find(self, padded: FloatArray, x: FloatArray) -> Indices:
        """``np.searchsorted(values, x)`` for finite ``x``; ``padded`` is the reference's
        values with one ``+inf`` appended (the bound of the last step)."""
        found = self.starts[_bucket(x, self.low, self.ceiling, self.scale, self.top)]
        for _ in range(self.steps):  # the reference values in x's bucket below x
            found += padded[found] < x
        outside = (x < self.low) | (x > self.high)
        if outside.any():
            found[outside] = np.searchsorted(padded[:-1], x[outside])
        return found


def _bucket(x: FloatArray, low: Any, ceiling: Any, scale: Any, top: Any) -> Indices:
    """The grid bucket of every value, clipped to the grid. Monotone in ``x`` and applied
    alike to reference and live values, so a value equal to a reference value falls in
    its bucket, and a larger one never in an earlier bucket. Values are clipped to
    ``[low, ceiling]`` first, so that no huge value overflows. The grid's numbers are
    scalars, or one per row of ``x`` (:class:`GridSet`): the same operations either way,
    so the same buckets."""
    bucket: FloatArray = np.maximum(x, low)
    np.minimum(bucket, ceiling, out=bucket)
    bucket -= low  # >= 0 exactly
    bucket *= scale
    np.minimum(bucket, top, out=bucket)  # rounding may land just past the top
    return bucket.astype(np.intp)


class ValueIndex:
    """Where live values fall among sorted distinct reference ``values``."""

    def __init__(self, values: FloatArray) -> None:
        self.values = values
        self.grid = Grid.build(values)
        #: The values and a ``+inf`` bound, only where a grid needs it: a large reference
        #: is not copied.
        self.padded = np.append(values, np.inf) if self.grid is not None else values

    def find(self, x: FloatArray) -> tuple[Indices, npt.NDArray[np.bool_]]:
        """For finite ``x``: ``np.searchsorted(values, x, side="left")``, and whether the
        value found there equals ``x``."""
        if self.grid is not None and x.size >= GRID_MIN:
            found = self.grid.find(self.padded, x)
            return found, self.padded[found] == x
        found = _sorted_search(self.values, x)
        # Past the end, "clip" reads the maximum, which is below x: never equal.
        return found, self.values.take(found, mode="clip") == x


def _sorted_search(values: FloatArray, x: FloatArray) -> Indices:
    """``np.searchsorted(values, x, side="left")``, sorting ``x`` first when ``values``
    is larger than the cache (:data:`SORTED_LOOKUP_MIN`)."""
    if values.size <= SORTED_LOOKUP_MIN or x.size < 64:
        return np.searchsorted(values, x, side="left")
    order = np.argsort(x)
    found = np.empty(x.size, dtype=np.intp)
    found[order] = np.searchsorted(values, x[order], side="left")
    return found


class GridSet:
    """Several features' grids searched together, over a matrix of live values (one row
    per feature): each step of the search is one numpy call for every feature instead of
    one per feature, which on 1,000-row batches was most of the cost of finding slots.

    The grids' bucket starts and padded values are laid end to end; a row's buckets and
    positions are offset into its own part. The rows come in decreasing order of the
    steps their grids need, so that each step runs on the leading rows that still need
    it. A value outside its grid's range is counted among the few reference values its
    grid left out at that end (at most ``k / GRID_TRIM``), all such values of every row
    in one comparison.
    """

    def __init__(self, indexes: Sequence[ValueIndex]) -> None:
        grids = [index.grid for index in indexes]
        if not all(grids) or [g.steps for g in grids if g] != sorted(
                (g.steps for g in grids if g), reverse=True):
            raise ValueError("a GridSet takes indexes with grids, most steps first")
        if not grids:  # nothing to search: find() is never called
            return
        values = [index.values for index in indexes]
        padded = [index.padded for index in indexes]
        numbers = {name: np.array([getattr(g, name) for g in grids])[:, np.newaxis]
                   for name in ("low", "high", "ceiling", "scale", "top")}
        self._low, self._high = numbers["low"], numbers["high"]
        self._ceiling, self._scale, self._top = numbers["ceiling"], numbers["scale"], numbers["top"]
        steps = [g.steps for g in grids if g]
        #: How many leading rows still search at each step.
        self._active = [sum(1 for s in steps if s > step) for step in range(max(steps))]
        value_starts = np.concatenate(([0], np.cumsum([p.size for p in padded])[:-1]))
        bucket_starts = np.concatenate(([0], np.cumsum([g.starts.size for g in grids if g])[:-1]))
        self._value_starts = value_starts.astype(np.intp)[:, np.newaxis]
        self._bucket_starts = bucket_starts.astype(np.intp)[:, np.newaxis]
        self._starts = np.concatenate([g.starts + start for g, start in
                                       zip(grids, value_starts.tolist(), strict=True) if g])
        self._padded = np.concatenate(padded)
        # The values each grid left out below its low and above its high, +inf-padded.
        trims = [(v.size - 1 - int(np.searchsorted(v, g.high)), int(np.searchsorted(v, g.low)))
                 for v, g in zip(values, grids, strict=True) if g]
        width = max(1, *(max(t) for t in trims))
        self._below = np.full((len(values), width), np.inf)
        self._above = np.full((len(values), width), np.inf)
        for row, (v, (above, below)) in enumerate(zip(values, trims, strict=True)):
            self._below[row, :below] = v[:below]
            self._above[row, :above] = v[v.size - above :]
        self._above_start = np.array([v.size - above for v, (above, _) in
                                      zip(values, trims, strict=True)], dtype=np.intp)

    def find(self, x: FloatArray) -> tuple[Indices, npt.NDArray[np.bool_]]:
        """:meth:`ValueIndex.find` of every row of the finite ``x`` in its own values."""
        found = self._starts[_bucket(x, self._low, self._ceiling, self._scale, self._top)
                             + self._bucket_starts]
        for rows in self._active:
            leading = found[:rows]
            leading += self._padded[leading] < x[:rows]
        row, column = np.nonzero((x < self._low) | (x > self._high))
        if row.size:
            beyond = x[row, column]
            below = beyond < self._low[row, 0]
            tail = np.where(below[:, np.newaxis], self._below[row], self._above[row])
            found[row, column] = (np.where(below, 0, self._above_start[row])
                                  + self._value_starts[row, 0]
                                  + (tail < beyond[:, np.newaxis]).sum(axis=1))
        equal = self._padded[found] == x
        found -= self._value_starts
        return found, equal
