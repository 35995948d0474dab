"""Reference profiles: what the detector remembers of the training data.

A numeric feature keeps its sorted distinct reference values and their counts. A live
value maps to a *slot*: slot ``2*i + 1`` holds values equal to reference value ``i``,
slot ``2*i`` values strictly between reference values ``i - 1`` and ``i`` (slot 0 below
the minimum, slot ``2*k`` above the maximum). Per-slot counts are enough to compute the
exact two-sample KS statistic (see :mod:`driftloop.drift.stats`), and every slot lies
inside exactly one PSI/JS bin because bin cut points are reference values.

A categorical feature keeps its reference categories; slot ``i`` is category ``i`` and
the last slot is the "unseen" bucket for labels the reference never had.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from driftloop.drift.columns import (
    Factorized,
    Kind,
    categorical_values,
    factorized,
    is_missing,
    not_a_number,
    numeric_values,
    optional_pandas,
)
from driftloop.drift.errors import DriftInputError
from driftloop.drift.lookup import GRID_MIN, GridSet, ValueIndex
from driftloop.drift.window import run_starts, runs

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
MISSING = -1  # slot code for a missing value (NaN, ±inf, None)


@dataclass(eq=False)
class NumericProfile:
    """Sorted distinct reference values, their counts and the PSI/JS bins."""

    name: str
    values: FloatArray
    counts: IntArray
    missing: int
    psi_bins: int
    #: When set, reference and live values are rounded to the nearest multiple of it
    #: (:func:`round_to`) before they are counted: see ``from_reference(resolution=...)``.
    resolution: float | None = None
    kind: Kind = field(default=Kind.NUMERIC, init=False)

    def __post_init__(self) -> None:
        k = self.values.size
        self.n = int(self.counts.sum())
        # cumulative[i] reference values below values[i]; cumulative[-1] == n. With the
        # values and the counts it is all the profile holds per distinct value (20 bytes;
        # up to 4,096 distinct values, the lookup grid adds at most 72 more). int32 while
        # the counts fit: an evaluation reads it at every occupied window slot, from
        # memory the cache lost since, so half the bytes is half the misses.
        width = np.int32 if self.n < 2**31 else np.int64
        self.cumulative: npt.NDArray[np.integer[Any]] = np.zeros(k + 1, dtype=width)
        np.cumsum(self.counts, out=self.cumulative[1:])
        self.index = ValueIndex(self.values)
        self.cuts: FloatArray = bin_cuts(self.values, self.counts, self.psi_bins)
        # Bin 0 holds what lies below the minimum, the last bin what lies above the
        # maximum; inner bin j starts at the j-th left edge (the minimum, then each cut)
        # and holds the values between it and the next edge. The cuts are reference
        # values, so each inner bin starts at a reference value: its first slot is that
        # value's equal-slot, and the between-slots that follow stay in its bin. Nothing
        # here is per slot or per value: a million-value reference costs a few searches.
        first_value = np.concatenate(([0], np.searchsorted(self.values, self.cuts)))
        #: The first slot of every bin, then one past the last slot.
        self.bin_first_slot = np.concatenate(([0], 2 * first_value + 1, [2 * k]))
        self.bin_slot_edges = np.append(self.bin_first_slot, self.n_slots)
        inner = np.diff(self.cumulative[np.append(first_value, k)])
        self.reference_bins: IntArray = np.concatenate(([0], inner, [0])).astype(np.int64)

    @property
    def n_slots(self) -> int:
        return 2 * self.values.size + 1

    @property
    def test_bins(self) -> IntArray:
        """Reference counts of the bins PSI, JS and the bias correction use."""
        return self.reference_bins

    def test_labels(self) -> list[str]:
        return self.bin_labels()

    @property
    def n_bins(self) -> int:
        return self.cuts.size + 3

    @property
    def bin_edges(self) -> FloatArray:
        """Edges of the inner bins: ``[min, cut_1, ..., cut_j, max]``."""
        return np.concatenate([self.values[:1], self.cuts, self.values[-1:]])

    def bin_labels(self) -> list[str]:
        edges = [f"{e:.6g}" for e in self.bin_edges]
        inner = [f"[{a}, {b})" for a, b in itertools.pairwise(edges[:-1])]
        inner.append(f"[{edges[-2]}, {edges[-1]}]")
        return [f"< {edges[0]}", *inner, f"> {edges[-1]}"]

    def bin_of(self, x: FloatArray) -> IntArray:
        """Bin index of finite values ``x``, by the same rule the slots use."""
        inner = np.searchsorted(self.cuts, x, side="right") + 1
        inner[x < self.values[0]] = 0
        inner[x > self.values[-1]] = self.n_bins - 1
        return inner

    def cumulative_at(self, slots: npt.NDArray[np.intp]) -> npt.NDArray[np.integer[Any]]:
        """Reference values at or below each slot: the reference ECDF times ``n``.

        Equal-slot ``2i + 1`` covers values up to and including ``values[i]``, between-slot
        ``2i`` those below ``values[i]``, so both read ``cumulative[(slot + 1) // 2]``
        (by ``take``: measured twice as fast as indexing on 10k slots).
        """
        return self.cumulative.take((slots + 1) >> 1)

    def floats(self, column: Any) -> FloatArray:
        """``column`` as the float64 values this profile counts (rounded to the
        resolution, if any), missing values as NaN."""
        return round_to(numeric_values(column, self.name), self.resolution)

    def encode(self, column: Any) -> npt.NDArray[np.int32]:
        """Slot of every value; :data:`MISSING` for NaN, ±inf and None."""
        return slot_codes(self.floats(column), self.index.find, self.values[0])

    def count(self, column: Any) -> tuple[npt.NDArray[np.int32], IntArray, int]:
        """The occupied slots of ``column`` in increasing order, how many values each
        holds, and how many values are missing: what :meth:`encode` and a pane's close
        give, for a whole table at once.

        Sorting the values once and searching only the distinct ones, in order, costs
        two thirds of finding each value's slot (an argsort, to undo the sort that makes
        the searches cache-friendly) and then counting the slots (a second sort): measured
        95 against 142 ms for a million continuous values in a million-value reference.
        """
        distinct, lengths, missing = sorted_runs(self.floats(column))
        i = np.searchsorted(self.values, distinct)
        slots = 2 * i + (self.values.take(i, mode="clip") == distinct)
        # Distinct values between two reference values share a slot: add their runs up.
        starts = run_starts(slots)
        return slots[starts].astype(np.int32), np.add.reduceat(lengths, starts), missing

    def encode_one(self, value: Any) -> int:
        """Slot of one value, by the same rule as :meth:`encode`, in plain Python."""
        if value is None:
            return MISSING
        if isinstance(value, str | bytes) or not isinstance(value, int | float | np.number):
            if is_missing(value):
                return MISSING
            raise not_a_number(self.name, value)
        x = float(value)
        if not math.isfinite(x):
            return MISSING
        if self.resolution is not None:
            x = float(round_to(np.array([x]), self.resolution)[0])
        i = int(self.values.searchsorted(x))
        return 2 * i + (i < self.values.size and float(self.values[i]) == x)

    def fingerprint_parts(self) -> list[bytes]:
        return [self.values.tobytes(), self.counts.tobytes(), self.cuts.tobytes(),
                repr(self.resolution).encode()]

    @classmethod
    def build(cls, name: str, column: Any, psi_bins: int,
              resolution: float | None = None) -> NumericProfile:
        if resolution is not None and not (math.isfinite(resolution) and resolution > 0):
            raise DriftInputError(f"resolution must be a positive number, got {resolution!r}",
                                  feature=name)
        values, counts, missing = sorted_runs(round_to(numeric_values(column, name), resolution))
        if values.size == 0:
            raise DriftInputError("the reference has no finite values", feature=name)
        if values.size < 2:
            raise DriftInputError(
                f"the reference is constant ({values[0]:g}): KS and PSI are undefined; "
                "drop the feature or declare it categorical",
                feature=name,
            )
        return cls(name, values, counts, missing, psi_bins, resolution)


class GriddedEncoder:
    """The slots of every numeric column whose reference has a lookup grid, found for all
    of them at once (:class:`GridSet`): :meth:`NumericProfile.encode` column by column
    cost a dozen numpy calls per column per batch, most of ``observe()`` on 1,000-row
    batches of a few dozen features."""

    def __init__(self, profiles: Sequence[FeatureProfile]) -> None:
        steps = {j: p.index.grid.steps for j, p in enumerate(profiles)
                 if isinstance(p, NumericProfile) and p.index.grid is not None}
        #: The columns it encodes, most grid steps first (as :class:`GridSet` needs).
        self.columns = sorted(steps, key=lambda j: -steps[j])
        self._profiles = [p for j in self.columns if isinstance(p := profiles[j], NumericProfile)]
        self._grids = GridSet([p.index for p in self._profiles])
        self._fill = np.array([p.values[0] for p in self._profiles])[:, np.newaxis]

    def encode(self, columns: Sequence[Any]) -> dict[int, npt.NDArray[np.int32]]:
        """The slots of :attr:`columns` out of all the table's ``columns``, by column;
        none when the batch is too short for the grids to pay (or its lengths differ:
        the column-by-column path then names the column)."""
        floats = [p.floats(columns[j]) for p, j in zip(self._profiles, self.columns,
                                                          strict=True)]
        if not floats or floats[0].size < GRID_MIN or any(f.size != floats[0].size
                                                          for f in floats):
            return {}
        slots = slot_codes(np.stack(floats), self._grids.find, self._fill)
        return dict(zip(self.columns, slots, strict=True))


def slot_codes(x: FloatArray, find: Callable[[FloatArray], tuple[npt.NDArray[np.intp],
                                                                  npt.NDArray[np.bool_]]],
               fill: Any) -> npt.NDArray[np.int32]:
    """The slot of every value of ``x`` (any shape), :data:`MISSING` for NaN and ±inf:
    ``find`` gives each finite value's position among the reference values and whether
    it equals the one there; the rest are searched as ``fill`` (a reference value, one
    per row of ``x`` or one for all) and then marked missing."""
    finite = np.isfinite(x)
    everywhere = bool(finite.all())
    i, equal = find(x if everywhere else np.where(finite, x, fill))
    i *= 2
    i += equal
    slots = i.astype(np.int32)
    if not everywhere:
        slots[~finite] = MISSING
    return slots


#: Columns at least this long are checked for few distinct values (:func:`sorted_runs`).
HASHED_MIN = 8192
#: A column whose sample of this many values repeats some (at most 90 % distinct) has
#: few distinct values for its length: a continuous column's sample is all distinct, one
#: of 2,310 values over 70,000 rows about 80 %.
_SAMPLE = 1024
_SAMPLE_DISTINCT = 0.9


def sorted_runs(x: FloatArray) -> tuple[FloatArray, IntArray, int]:
    """The distinct finite values of ``x`` in increasing order, how often each occurs,
    and how many values are not finite (NaN, ±inf): ``np.unique`` with counts, less the
    copy that drops the non-finite values (a sort puts them at the ends).

    A long column of few distinct values (integers, codes, measurements drawn from a
    small set) is counted by hash and only its distinct values sorted, as pandas'
    ``value_counts`` does: sorting 70,000 such values cost 2.4 ms a column, most of
    building a detector on a mixed table. A sample of the column decides; a wrong guess
    costs time, never exactness.
    """
    if x.size >= HASHED_MIN:
        pandas = optional_pandas()
        sample = x[:: x.size // _SAMPLE][:_SAMPLE]
        if pandas is not None and np.unique(sample).size <= _SAMPLE_DISTINCT * _SAMPLE:
            codes, uniques = pandas.factorize(x, use_na_sentinel=True)  # NaN: -1
            counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
            finite = np.isfinite(uniques)
            order = np.argsort(uniques[finite])
            kept = counts[finite][order].astype(np.int64, copy=False)
            return (np.asarray(uniques[finite][order], dtype=np.float64), kept,
                    x.size - int(kept.sum()))
    ordered = np.sort(x)  # -inf first; +inf, then NaN, last
    finite = ordered[np.searchsorted(ordered, -np.inf, side="right"):
                     np.searchsorted(ordered, np.inf, side="left")]
    distinct, counts = runs(finite)
    return distinct, counts, x.size - finite.size


def round_to(x: FloatArray, resolution: float | None) -> FloatArray:
    """``x`` rounded to the nearest multiple of ``resolution`` (ties to even); ``x`` itself
    when there is none. Reference and live values go through the same rounding, so the
    statistics are exact for the rounded data."""
    if resolution is None:
        return x
    return np.asarray(np.round(x / resolution) * resolution)


def bin_cuts(values: FloatArray, counts: IntArray, bins: int) -> FloatArray:
    """Cut points of the PSI/JS bins: reference values, each one the left edge of a bin.

    Plain reference quantiles fail when much of the reference sits on one value: a 0/1
    flag with 5 % ones, or a count that is zero 91 % of the time, collapses into a single
    inner bin, JS and PSI are 0 whatever happens, and the effect floor vetoes every alarm
    the KS test raises. So the bins are built in three layers, so that the effect size sees
    what the test sees:

    - with at most ``bins`` distinct values, every value is its own bin;
    - a *heavy atom* (a value holding at least ``1 / bins`` of the reference) gets a bin of
      its own: a cut at it and one at the next reference value, and no reference value lies
      in between;
    - the rest of the mass is cut at its own ``bins`` inverted-CDF quantiles, so a zero-
      inflated feature keeps full resolution on its non-zero part.
    """
    k = values.size
    if k <= bins:
        return values[1:].copy()
    n = counts.sum()
    heavy = counts * bins >= n
    atoms = np.flatnonzero(heavy)
    cuts = [values[atoms], values[np.minimum(atoms + 1, k - 1)]]
    # Copies of the rest only when there are atoms to leave out of it.
    rest_values, rest_counts = ((values[~heavy], counts[~heavy]) if atoms.size
                                else (values, counts))
    if rest_values.size:
        cumulative = np.cumsum(rest_counts)
        probs = np.arange(1, bins) / bins
        positions = np.searchsorted(cumulative, probs * cumulative[-1], side="left")
        cuts.append(rest_values[np.minimum(positions, rest_values.size - 1)])
    unique = np.unique(np.concatenate(cuts))
    return np.asarray(unique[unique > values[0]], dtype=np.float64)


#: A category holding less than this share of the reference is pooled with the other rare
#: ones into one bin before testing: at the default 5000-event window its expected count
#: is under 25, and chi-square is anti-conservative on sparse cells (5,000 Zipf labels gave
#: 16 % significant stationary evaluations unpooled). 0.5 % keeps at most 200 bins.
RARE_SHARE = 0.005


@dataclass(eq=False)
class CategoricalProfile:
    """Reference categories and their counts; one extra slot for unseen labels."""

    name: str
    categories: list[Any]
    counts: IntArray
    missing: int
    kind: Kind = field(default=Kind.CATEGORICAL, init=False)

    def __post_init__(self) -> None:
        self.n = int(self.counts.sum())
        self.lookup: dict[Any, int] = {c: i for i, c in enumerate(self.categories)}
        self.reference_bins: IntArray = np.append(self.counts, 0).astype(np.int64)
        self._label_maps: dict[Hashable, npt.NDArray[np.int32]] = {}
        # The bins tested: frequent categories, the rare ones pooled, the unseen bucket.
        rare = self.counts < RARE_SHARE * self.n
        if rare.sum() < 2:
            rare[:] = False
        kept = np.flatnonzero(~rare)
        self.slot_bins: IntArray = np.empty(self.n_slots, dtype=np.int64)
        self.slot_bins[kept] = np.arange(kept.size)
        self.slot_bins[np.flatnonzero(rare)] = kept.size
        self.slot_bins[-1] = kept.size + int(rare.any())
        self.pooled = int(rare.sum())
        self.test_bins: IntArray = np.bincount(
            self.slot_bins, weights=self.reference_bins, minlength=self.slot_bins[-1] + 1
        ).astype(np.int64)

    @property
    def n_slots(self) -> int:
        return len(self.categories) + 1

    n_bins = n_slots

    def bin_labels(self) -> list[str]:
        return [str(c) for c in self.categories] + ["(unseen)"]

    def histogram(self, slots: npt.NDArray[Any], counts: IntArray) -> IntArray:
        """Counts in the test bins (rare categories share one) of ``slots`` holding
        ``counts``."""
        return np.bincount(self.slot_bins[slots], weights=counts,
                           minlength=self.test_bins.size).astype(np.int64)

    def test_labels(self) -> list[str]:
        """Labels of :attr:`test_bins`: the frequent categories, the pooled rare ones."""
        kept = [str(c) for c, b in zip(self.categories, self.slot_bins.tolist(), strict=False)
                if self.pooled == 0 or b < self.test_bins.size - 2]
        pooled = [f"(rare: {self.pooled} labels)"] if self.pooled else []
        return [*kept, *pooled, "(unseen)"]

    def encode(self, column: Any) -> npt.NDArray[np.int32]:
        """Slot of every label; :data:`MISSING` for None, NaN and pandas NA.

        The column's distinct labels are mapped once (and, for a pandas category dtype,
        remembered from batch to batch); the values then only index that small table.
        """
        factor = self._factorized(column)
        if factor is None:  # no pandas: a dictionary look-up per value
            lookup, unseen = self.lookup, len(self.categories)
            return np.fromiter(
                (MISSING if is_missing(v) else lookup.get(_plain(v), unseen)
                 for v in categorical_values(column)),
                dtype=np.int32,
            )
        table = self._label_maps.get(factor.key) if factor.key is not None else None
        if table is None:
            table = self._slots_of(factor.labels())
            if factor.key is not None:
                if len(self._label_maps) >= _LABEL_MAPS_KEPT:
                    self._label_maps.clear()
                self._label_maps[factor.key] = table
        return table[factor.codes]

    def _factorized(self, column: Any) -> Factorized | None:
        try:
            return factorized(column)
        except TypeError:
            raise DriftInputError("unhashable label", feature=self.name) from None

    def _slots_of(self, labels: list[Any]) -> npt.NDArray[np.int32]:
        """Slot of each distinct label, then :data:`MISSING` at the end for code -1."""
        unseen = len(self.categories)
        try:
            slots = [MISSING if is_missing(v) else self.lookup.get(_plain(v), unseen)
                     for v in labels]
        except TypeError:
            raise DriftInputError("unhashable label", feature=self.name) from None
        return np.array([*slots, MISSING], dtype=np.int32)

    def encode_one(self, value: Any) -> int:
        """Slot of one label, by the same rule as :meth:`encode`."""
        if is_missing(value):
            return MISSING
        try:
            return self.lookup.get(_plain(value), len(self.categories))
        except TypeError:
            raise DriftInputError(f"unhashable label {value!r}", feature=self.name) from None

    def fingerprint_parts(self) -> list[bytes]:
        return [json.dumps(self.categories).encode(), self.counts.tobytes()]

    @classmethod
    def build(cls, name: str, column: Any) -> CategoricalProfile:
        """Count the labels in C (pandas / Arrow factorisation and ``bincount``); only the
        distinct labels pass through Python."""
        try:
            factor = factorized(column)
        except TypeError:
            raise DriftInputError("unhashable label", feature=name) from None
        if factor is None:  # no pandas: count value by value
            distinct: dict[Any, int] = {}
            for value in categorical_values(column).tolist():
                distinct[value] = distinct.get(value, 0) + 1
            return cls._of_label_counts(name, list(distinct), list(distinct.values()))
        codes = factor.codes
        present = codes[codes >= 0]
        labels = factor.labels()
        counts = np.bincount(present, minlength=len(labels))
        return cls._of_label_counts(name, [None, *labels],
                                    [codes.size - present.size, *counts.tolist()])

    @classmethod
    def _of_label_counts(
        cls, name: str, labels: list[Any], counts: list[int]
    ) -> CategoricalProfile:
        totals: dict[Any, int] = {}
        missing = 0
        for value, count in zip(labels, counts, strict=True):
            if not count:
                continue
            if is_missing(value):
                missing += count
                continue
            label = _plain(value)
            if not isinstance(label, str | int | float | bool):
                raise DriftInputError(
                    f"categories must be strings, integers, floats or booleans, "
                    f"got {type(value).__name__}",
                    feature=name,
                )
            totals[label] = totals.get(label, 0) + count
        if not totals:
            raise DriftInputError("the reference has no values", feature=name)
        categories = sorted(totals, key=lambda c: (type(c).__name__, c))
        return cls(name, categories, np.array([totals[c] for c in categories], dtype=np.int64),
                   missing)


#: Category dtypes whose slot tables a profile remembers (a stream rarely has more than one).
_LABEL_MAPS_KEPT = 16


FeatureProfile = NumericProfile | CategoricalProfile


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so labels hash and serialise the same way."""
    return value.item() if isinstance(value, np.generic) else value


def fingerprint(profiles: list[FeatureProfile]) -> str:
    """A sha256 over every profile: equal only for detectors built on the same reference."""
    digest = hashlib.sha256()
    for profile in profiles:
        digest.update(f"{profile.name}\0{profile.kind}\0".encode())
        for part in profile.fingerprint_parts():
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
    return digest.hexdigest()
