"""Every large column's window statistics at once, from the window's occupied slots.

A column over more than :data:`~driftloop.drift.window.DENSE_SLOTS` slots (a numeric
one over a continuous reference of over 8,191 distinct values) keeps only the window's
occupied slots and their counts, laid end to end for all such columns
(:class:`~driftloop.drift.window.SparseLayout`). Column by column, KS and the test-bin
histogram took a few dozen numpy calls, each over a few thousand slots: on 25 such
columns the calls' fixed cost, a ``cumsum`` over every slot (numpy adds one value at a
time) and gathers from references larger than the cache were most of an evaluation
(measured 3.5 of 5.0 ms on 25 features x 100k reference, 10k window). Here each step
runs once for every column, and the numeric columns' reference cumulative counts lie end
to end in one array, at half each column's first laid-out slot.

KS, exactly. Between two occupied slots the window ECDF ``W`` is flat while the
reference ECDF ``R`` rises, so the largest gap sits at an occupied slot ``j``: the
window above the reference at its upper end, ``W_j − R(s_j)``, or the reference above
the window just below it, ``R(s_j − 1) − W_{j−1}``. The other two signs are never
larger (``R(s_j) − W_j ≤ R(s_{j+1} − 1) − W_j``, ``W_{j−1} − R(s_j − 1) ≤ W_{j−1} −
R(s_{j−1})``, and at the last slot ``R − 1 ≤ 0 ≤ 1 − R``). The ECDFs are integer
counts divided by the sample sizes, as ``ks_2samp`` divides them, so the maximum is
scipy's to the last bit.

Those terms are not evaluated at every slot. The occupied slots go in blocks of
:data:`BLOCK`; as both ECDFs rise through a block, no term inside it exceeds ``W`` at
its end minus ``R`` at its first slot, nor ``R`` below its last slot minus ``W`` before
it (float division and subtraction are monotone, so the computed bound holds for the
computed terms). Only the block totals are summed (``add.reduceat``), the terms are
evaluated at every block's ends, and slot by slot only in the blocks whose bound
exceeds the largest term found: on a 10k-event window a few percent of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from driftloop.drift.profile import FeatureProfile, NumericProfile
from driftloop.drift.window import LaidSlots

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]

#: Occupied slots per block. Smaller blocks bound the terms more tightly but cost more
#: block ends; measured on 25 features x 10k window, 16 opens 7 % of the blocks, 32 24 %.
BLOCK = 16


@dataclass(frozen=True)
class _Laid:
    """A window's large columns laid end to end, in blocks of at most :data:`BLOCK`."""

    slots: LaidSlots  # every column's occupied slots, in the one slot numbering
    counts: IntArray
    column: Indices  # the column of every block
    firsts: Indices  # every block's first entry
    lasts: Indices  # and its last
    before: IntArray  # the count before every block, all columns together
    through: IntArray  # and through it
    base: IntArray  # per block, the count before its column's first block
    filled: Indices  # the columns with occupied slots
    filled_starts: Indices  # the first block of each
    total: IntArray  # every column's total


class SparseStatistics:
    """The large columns' KS statistics and histograms, from the window's laid-out totals
    (:class:`~driftloop.drift.window.SparseLayout`); built once per reference. A large
    categorical column (over 16,383 labels) gets no KS (NaN) and no bins here.

    Building it moves the numeric columns' reference cumulative counts into one shared
    array (each profile keeps a view of its part): the reference is held once, as before."""

    def __init__(self, profiles: Sequence[FeatureProfile], starts: LaidSlots,
                 width: int) -> None:
        self.rows = len(profiles)
        self.width = width
        self._starts = starts
        halves = (starts // 2).tolist()
        numeric = [p for p in profiles if isinstance(p, NumericProfile)]
        dtype = np.result_type(np.int32, *(p.cumulative.dtype for p in numeric))
        self._reference = np.zeros(halves[-1], dtype=dtype)
        # Consecutive edges of one column bound a bin; between columns they bound none:
        # a bin's count is the difference at ``picks`` of the edges' running counts, and
        # lands at ``targets`` in the rows x width histogram matrix.
        edges: list[npt.NDArray[np.integer]] = []
        picks = [np.zeros(0, dtype=np.intp)]
        targets = [np.zeros(0, dtype=np.intp)]
        first_edge = 0
        for row, (profile, half, start) in enumerate(zip(profiles, halves[:-1],
                                                         starts[:-1].tolist(), strict=True)):
            if not isinstance(profile, NumericProfile):
                continue
            part = self._reference[half : half + profile.cumulative.size]
            part[:] = profile.cumulative
            profile.cumulative = part
            edges.append(profile.bin_slot_edges + start)
            bins = np.arange(profile.bin_slot_edges.size - 1)
            picks.append(first_edge + bins)
            targets.append(row * width + bins)
            first_edge += profile.bin_slot_edges.size
        self._numeric = np.array([isinstance(p, NumericProfile) for p in profiles], dtype=bool)
        self._n_float = np.array([p.n for p in profiles], dtype=np.float64)
        self._edges = (np.concatenate(edges) if edges else np.zeros(0)).astype(starts.dtype)
        self._bin_pick = np.concatenate(picks)
        self._bin_target = np.concatenate(targets)

    def evaluate(self, slots: LaidSlots, counts: IntArray
                 ) -> tuple[IntArray, FloatArray, IntArray]:
        """Per column, from the window's laid-out occupied ``slots`` and their ``counts``:
        the present count, the KS statistic (NaN for an empty window or a categorical
        column) and the test-bin histogram (rows x width, zeros for a categorical column)."""
        laid = self._lay(slots, counts)
        if laid is None:
            return (np.zeros(self.rows, dtype=np.int64), np.full(self.rows, np.nan),
                    np.zeros((self.rows, self.width), dtype=np.int64))
        statistic = self._ks(laid)
        statistic[~self._numeric] = np.nan
        return laid.total, statistic, self._histograms(laid)

    def histograms(self, slots: LaidSlots, counts: IntArray) -> IntArray:
        """The test-bin histograms (rows x width) of laid-out ``slots`` and ``counts``."""
        laid = self._lay(slots, counts)
        if laid is None:
            return np.zeros((self.rows, self.width), dtype=np.int64)
        return self._histograms(laid)

    def _lay(self, slots: LaidSlots, counts: IntArray) -> _Laid | None:
        """The blocks of every column's run of ``slots``: a column's blocks never reach
        into the next column's slots."""
        if not slots.size:
            return None
        bounds = np.searchsorted(slots, self._starts)
        sizes = np.diff(bounds)
        blocks = -(-sizes // BLOCK)
        column = np.repeat(np.arange(self.rows), blocks)
        block_start = np.cumsum(blocks) - blocks
        firsts = bounds[:-1][column] + BLOCK * (np.arange(column.size) - block_start[column])
        lasts = np.minimum(firsts + BLOCK, bounds[1:][column]) - 1
        through = np.cumsum(np.add.reduceat(counts, firsts))
        before = np.concatenate(([0], through[:-1]))
        filled = np.flatnonzero(blocks)
        filled_starts = block_start[filled]
        base = before[filled_starts]
        total = np.zeros(self.rows, dtype=np.int64)
        total[filled] = through[filled_starts + blocks[filled] - 1] - base
        column_base = np.zeros(self.rows, dtype=np.int64)
        column_base[filled] = base
        return _Laid(slots, counts, column, firsts, lasts, before, through,
                     column_base[column], filled, filled_starts, total)

    def _ks(self, laid: _Laid) -> FloatArray:
        """Every column's KS statistic (NaN for an empty one), by block bounds (module
        docstring): the terms at every block's ends, then slot by slot in the blocks
        whose bound exceeds the largest of its column."""
        column = laid.column
        # Sizes as floats: an integer divided by a float is what scipy's integer division
        # computes, at two thirds of the cost.
        m, n = laid.total.astype(np.float64)[column], self._n_float[column]
        within = laid.before - laid.base
        window_before = within / m
        window_end = (laid.through - laid.base) / m
        ends = laid.slots.take(np.stack([laid.firsts, laid.lasts], axis=1))
        below = self._reference.take(ends >> 1) / n[:, np.newaxis]
        at_or_below = self._reference.take((ends + 1) >> 1) / n[:, np.newaxis]
        exact = np.maximum(below[:, 0] - window_before, window_end - at_or_below[:, 1])
        best = np.full(self.rows, np.nan)
        best[laid.filled] = np.maximum.reduceat(exact, laid.filled_starts)
        bound = np.maximum(window_end - at_or_below[:, 0], below[:, 1] - window_before)
        opened = np.flatnonzero(bound > best[column])
        if opened.size:
            at = laid.firsts[opened][:, np.newaxis] + np.arange(BLOCK)
            last = laid.lasts[opened][:, np.newaxis]
            # A short block is padded with its last slot holding nothing more: the
            # padding's terms are at most that slot's.
            held = np.where(at <= last, laid.counts.take(at, mode="clip"), 0)
            at = np.minimum(at, last)
            running = np.cumsum(held, axis=1)
            running += within[opened][:, np.newaxis]
            inside = laid.slots.take(at)
            m_open, n_open = m[opened][:, np.newaxis], n[opened][:, np.newaxis]
            terms = np.maximum(
                self._reference.take(inside >> 1) / n_open - (running - held) / m_open,
                running / m_open - self._reference.take((inside + 1) >> 1) / n_open)
            np.maximum.at(best, column[opened], terms.max(axis=1))
        return best

    def _histograms(self, laid: _Laid) -> IntArray:
        """Every column's test-bin counts: the count before each bin edge is the count
        before the edge's block plus the few of its own block before it."""
        positions = np.searchsorted(laid.slots, self._edges)
        block = np.searchsorted(laid.firsts, positions, side="right") - 1
        within = laid.firsts[block][:, np.newaxis] + np.arange(BLOCK)
        part = np.where(within < positions[:, np.newaxis],
                        laid.counts.take(within, mode="clip"), 0).sum(axis=1)
        running = laid.before[block] + part
        histograms = np.zeros(self.rows * self.width, dtype=np.int64)
        histograms[self._bin_target] = np.diff(running)[self._bin_pick]
        return histograms.reshape(self.rows, self.width)
