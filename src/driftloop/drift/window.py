"""The sliding window: closed panes of sparse counts, their running totals, one open pane.

Events go into the open pane as slot codes. Closing it compresses the codes into
(slot, count) pairs per feature and adds them to dense running totals; evicting the
oldest pane subtracts its pairs again. The raw events are never kept beyond the open
pane, and nothing is ever recomputed from history.

Panes carry an integer id: the pane's sequence number for count-based windows, the time
bucket ``floor(t / pane_seconds)`` for time-based ones. Two windows merge by summing the
panes that share an id, which is what a replica needs to add up its peers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Codes = npt.NDArray[np.int32]
IntArray = npt.NDArray[np.int64]
#: Slots in :class:`SparseLayout`'s one numbering: int32 while it fits, else int64.
LaidSlots = npt.NDArray[np.signedinteger[Any]]


@dataclass(eq=False)
class Pane:
    """One closed pane: per feature the occupied slots, their counts and the missing count."""

    id: int
    events: int
    slots: list[npt.NDArray[np.int32]]
    counts: list[IntArray]
    missing: IntArray
    #: The small columns' occupied slots and counts laid out in the block's one vector
    #: (:meth:`SlotBlock.gather`), kept once found.
    block: tuple[npt.NDArray[np.intp], IntArray] | None = field(default=None, repr=False)


#: Columns with at most this many slots (every categorical feature with fewer labels, a
#: numeric one over up to 8,191 distinct reference values) keep their window totals side
#: by side in one dense vector, :class:`SlotBlock`: a pane's counts are found, added and
#: evaluated for all of them in a few whole-array passes (:mod:`driftloop.drift.block`)
#: instead of a few numpy calls per column, most of what a pane close cost on 1,000-row
#: batches. Larger slot spaces keep only their occupied slots.
DENSE_SLOTS = 16_384


@dataclass(frozen=True)
class SlotBlock:
    """Where the small columns' slot spaces lie, end to end, in the block's one vector."""

    #: The small columns, in column order.
    columns: list[int]
    #: Where each small column's slots start in the vector, then the vector's size.
    offsets: IntArray

    @classmethod
    def of(cls, slot_sizes: Sequence[int]) -> SlotBlock:
        columns = [j for j, size in enumerate(slot_sizes) if size <= DENSE_SLOTS]
        offsets = np.zeros(len(columns) + 1, dtype=np.int64)
        np.cumsum([slot_sizes[j] for j in columns], out=offsets[1:])
        return cls(columns, offsets)

    @property
    def size(self) -> int:
        return int(self.offsets[-1])

    def count(self, codes: Codes) -> tuple[npt.NDArray[np.intp], IntArray, IntArray]:
        """The occupied slots (in the vector) of the small columns' ``codes`` (one row
        each), how often each occurs, and each row's :data:`MISSING` codes: one count
        for every column."""
        shifted = codes + self.offsets[:-1, np.newaxis]
        lost = codes < 0
        shifted[lost] = self.size  # missing: one past the end, dropped below
        flat = shifted.ravel()
        missing = lost.sum(axis=1)
        if self.size <= 4 * flat.size:  # small next to the events: count densely
            dense = np.bincount(flat, minlength=self.size + 1)[: self.size]
            occupied = np.flatnonzero(dense)
            return occupied, dense[occupied], missing
        occupied, counts = runs(np.sort(flat))
        kept = occupied < self.size
        return occupied[kept], counts[kept], missing

    def split(self, occupied: npt.NDArray[np.intp], counts: IntArray
              ) -> list[tuple[npt.NDArray[np.int32], IntArray]]:
        """Per small column, its own slots and counts out of the vector's."""
        cuts = np.searchsorted(occupied, self.offsets).tolist()
        return [((occupied[a:b] - start).astype(np.int32), counts[a:b])
                for a, b, start in zip(cuts[:-1], cuts[1:], self.offsets[:-1].tolist(),
                                       strict=True)]

    def gather(self, pane: Pane) -> tuple[npt.NDArray[np.intp], IntArray]:
        """The pane's small-column slots laid out in the vector, with their counts (at
        least one small column)."""
        if pane.block is None:
            starts = self.offsets[:-1].tolist()
            pane.block = (np.concatenate([pane.slots[j].astype(np.intp) + start for j, start
                                          in zip(self.columns, starts, strict=True)]),
                          np.concatenate([pane.counts[j] for j in self.columns]))
        return pane.block


@dataclass(frozen=True)
class SparseLayout:
    """Where the large columns' slot spaces lie, end to end, in one slot numbering: the
    window keeps their occupied slots and counts in one pair of arrays, evaluated for
    all columns at once (:mod:`driftloop.drift.sparse`), not a dozen numpy calls per
    column.

    Every column starts at an even slot, one slot (or two) past the previous column's
    last, so that a numeric column's slot ``s`` at ``start + s`` halves to its reference
    value's index plus ``start / 2``: the numeric columns' reference counts lie end to
    end at those halves (:class:`~driftloop.drift.sparse.SparseStatistics`). Slots are
    int32 while the numbering fits (below 2³¹ slots in all), half the bytes to move."""

    #: The large columns, in column order.
    columns: list[int]
    #: Where each large column's slots start, then where the next would.
    starts: LaidSlots

    @classmethod
    def of(cls, slot_sizes: Sequence[int]) -> SparseLayout:
        columns = [j for j, size in enumerate(slot_sizes) if size > DENSE_SLOTS]
        starts = np.zeros(len(columns) + 1, dtype=np.int64)
        np.cumsum([slot_sizes[j] + 2 - slot_sizes[j] % 2 for j in columns], out=starts[1:])
        return cls(columns, starts.astype(np.int32) if starts[-1] < 2**31 else starts)

    def gather(self, pane: Pane) -> tuple[LaidSlots, IntArray]:
        """The pane's large-column slots laid out, with their counts (at least one large
        column). Laid out anew at each use (adding the pane, its histograms, evicting it):
        kept, it would double what a closed pane holds."""
        return (np.concatenate([pane.slots[j].astype(self.starts.dtype) + start
                                for j, start in zip(self.columns, self.starts[:-1],
                                                    strict=True)]),
                np.concatenate([pane.counts[j] for j in self.columns]))

    def merge(self, slots: LaidSlots, counts: IntArray,
              more: LaidSlots, more_counts: IntArray
              ) -> tuple[LaidSlots, IntArray]:
        """Laid-out ``slots`` holding ``counts`` plus laid-out ``more`` holding
        ``more_counts`` (negative to take a pane away), slots whose count falls to zero
        dropped. Column by column: a column's few thousand slots stay in the cache, and
        merging the whole laid-out arrays in one sort measured twice as slow."""
        here = np.searchsorted(slots, self.starts).tolist()
        there = np.searchsorted(more, self.starts).tolist()
        merged, summed = [], []
        for a, b, c, d in zip(here[:-1], here[1:], there[:-1], there[1:], strict=True):
            if c == d:
                merged.append(slots[a:b])
                summed.append(counts[a:b])
                continue
            # Both runs are sorted: the stable sort in sorted_counts merges them in O(n).
            column, column_counts = sorted_counts(np.concatenate([slots[a:b], more[c:d]]),
                                                  np.concatenate([counts[a:b],
                                                                  more_counts[c:d]]))
            kept = column_counts != 0
            merged.append(column[kept])
            summed.append(column_counts[kept])
        return np.concatenate(merged), np.concatenate(summed)


class OpenPane:
    """The pane being filled: a growable buffer of slot codes per feature."""

    def __init__(self, pane_id: int, slot_sizes: Sequence[int], capacity: int = 256) -> None:
        self.id = pane_id
        self.events = 0
        self._slot_sizes = slot_sizes
        self._codes = np.empty((len(slot_sizes), capacity), dtype=np.int32)

    def add(self, codes: Codes, *, owned: bool = False) -> None:
        """Append a (features × rows) block of slot codes. An empty pane takes an
        ``owned`` block (one no one else writes to) as its buffer instead of copying it:
        a batch report's million events are then never copied twice."""
        rows = codes.shape[1]
        if owned and self.events == 0 and rows > self._codes.shape[1]:
            self._codes, self.events = codes, rows
            return
        needed = self.events + rows
        if needed > self._codes.shape[1]:
            grown = np.empty((self._codes.shape[0], max(needed, 2 * self._codes.shape[1])),
                             dtype=np.int32)
            grown[:, : self.events] = self._codes[:, : self.events]
            self._codes = grown
        self._codes[:, self.events : needed] = codes
        self.events = needed

    @property
    def codes(self) -> Codes:
        return self._codes[:, : self.events]

    def close(self, block: SlotBlock) -> Pane:
        """The pane's counts: the small columns' all at once (:meth:`SlotBlock.count`),
        each large column's by :func:`count_codes`."""
        codes = self.codes
        columns = len(self._slot_sizes)
        slots: list[npt.NDArray[np.int32]] = [_NO_SLOTS] * columns
        counts: list[IntArray] = [_NO_COUNTS] * columns
        missing = np.zeros(columns, dtype=np.int64)
        small = block.columns
        found = None
        if small:
            rows = codes if len(small) == columns else codes[small]
            occupied_all, counted, missing[small] = block.count(rows)
            found = (occupied_all, counted)
            for j, (occupied, count) in zip(small, block.split(*found), strict=True):
                slots[j], counts[j] = occupied, count
        for j in sorted(set(range(columns)) - set(small)):
            slots[j], counts[j], missing[j] = count_codes(codes[j], self._slot_sizes[j])
        return Pane(self.id, self.events, slots, counts, missing, block=found)


_NO_SLOTS = np.zeros(0, dtype=np.int32)
_NO_COUNTS = np.zeros(0, dtype=np.int64)


def count_codes(codes: Codes, size: int) -> tuple[npt.NDArray[np.int32], IntArray, int]:
    """The occupied slots of one feature's ``codes`` (a slot space of ``size``) in
    increasing order, how often each occurs, and how many codes are missing."""
    present = codes[codes >= 0]
    missing = codes.size - present.size
    if size <= 4 * present.size:  # small slot space: count densely
        dense = np.bincount(present, minlength=size)
        occupied = np.flatnonzero(dense).astype(np.int32)
        return occupied, dense[occupied].astype(np.int64), missing
    occupied, count = distinct_counts(present)
    return occupied, count, missing


class PaneWindow:
    """Up to ``panes`` closed panes with per-slot running totals, and the open pane."""

    def __init__(self, slot_sizes: Sequence[int], panes: int, first_id: int = 0) -> None:
        self.slot_sizes = list(slot_sizes)
        self.panes = panes
        self.closed: list[Pane] = []
        self.block = SlotBlock.of(self.slot_sizes)
        #: The small columns' running totals, end to end (:class:`SlotBlock`).
        self.block_totals = np.zeros(self.block.size, dtype=np.int64)
        self._block_row = {j: r for r, j in enumerate(self.block.columns)}
        self.layout = SparseLayout.of(self.slot_sizes)
        #: The large columns' running totals: their occupied slots (:class:`SparseLayout`)
        #: and counts. A numeric feature over a continuous reference has two slots per
        #: distinct reference value: the window costs nothing per reference value, and
        #: its statistics need no sort.
        self.sparse_slots = np.zeros(0, dtype=self.layout.starts.dtype)
        self.sparse_counts: IntArray = _NO_COUNTS
        self.missing = np.zeros(len(self.slot_sizes), dtype=np.int64)
        self.events = 0
        #: Bumped whenever the closed panes' totals change: statistics computed at one
        #: version hold until the next.
        self.version = 0
        self.open = OpenPane(first_id, self.slot_sizes)

    def occupied(self, feature: int) -> tuple[npt.NDArray[np.integer[Any]], IntArray]:
        """The window's occupied slots of ``feature`` in increasing order, with their counts."""
        row = self._block_row.get(feature)
        if row is None:
            at = self.layout.columns.index(feature)
            bounds = self.layout.starts[at : at + 2]
            a, b = np.searchsorted(self.sparse_slots, bounds).tolist()
            return self.sparse_slots[a:b] - bounds[0], self.sparse_counts[a:b]
        start, stop = self.block.offsets[row : row + 2].tolist()
        dense = self.block_totals[start:stop]
        occupied = np.flatnonzero(dense)
        return occupied, dense[occupied]

    @property
    def newest_id(self) -> int | None:
        return self.closed[-1].id if self.closed else None

    def close_open(self, next_id: int) -> Pane:
        """Close the open pane, add it to the window, evict what fell out, open ``next_id``."""
        return self.close_as(self.open.close(self.block), next_id)

    def close_as(self, pane: Pane, next_id: int) -> Pane:
        """Close the open pane as ``pane``, whose counts the caller made (a whole table
        counted at once), and go on as :meth:`close_open` does."""
        self.open = OpenPane(next_id, self.slot_sizes)
        self.insert(pane)
        self.evict_before(next_id - self.panes)
        return pane

    def insert(self, pane: Pane) -> None:
        """Add ``pane`` to the totals, summing into a closed pane with the same id."""
        self._apply(pane, +1)
        for i, existing in enumerate(self.closed):
            if existing.id == pane.id:
                self.closed[i] = _sum_panes(existing, pane)
                return
        self.closed.append(pane)
        self.closed.sort(key=lambda p: p.id)

    def evict_before(self, oldest_kept: int) -> None:
        while self.closed and self.closed[0].id < oldest_kept:
            self._apply(self.closed.pop(0), -1)

    def _apply(self, pane: Pane, sign: int) -> None:
        self.version += 1
        if self.block.columns:
            at, added = self.block.gather(pane)  # distinct slots: no np.add.at needed
            self.block_totals[at] += sign * added
        if self.layout.columns:
            slots, counts = self.layout.gather(pane)
            if not self.sparse_slots.size and sign > 0:
                self.sparse_slots, self.sparse_counts = slots, counts
            else:
                self.sparse_slots, self.sparse_counts = self.layout.merge(
                    self.sparse_slots, self.sparse_counts, slots, sign * counts)
        self.missing += sign * pane.missing
        self.events += sign * pane.events


def sorted_counts(
    slots: npt.NDArray[Any], weights: IntArray
) -> tuple[npt.NDArray[Any], IntArray]:
    """Distinct ``slots`` in increasing order with the summed ``weights`` of each.

    A sort and a run-length pass: several times faster than ``np.unique`` on the
    pane-sized integer arrays this is called with.
    """
    order = np.argsort(slots, kind="stable")
    ordered = slots[order]
    starts = run_starts(ordered)
    summed = np.add.reduceat(weights[order], starts) if starts.size else weights[:0]
    return ordered[starts], summed.astype(np.int64, copy=False)


def distinct_counts(slots: npt.NDArray[np.int32]) -> tuple[npt.NDArray[np.int32], IntArray]:
    """Distinct ``slots`` in increasing order with how often each occurs: a plain sort (no
    order to keep, no weights to carry) and run lengths, several times cheaper than
    :func:`sorted_counts` with unit weights on a million events."""
    distinct, counts = runs(np.sort(slots))
    return distinct.astype(np.int32), counts


def runs(ordered: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], IntArray]:
    """The distinct values of the sorted ``ordered``, in increasing order, and how often
    each occurs. Without ties (most continuous data) they are ``ordered`` itself, each
    once: no runs to find."""
    new_value = ordered[1:] != ordered[:-1]
    if new_value.all():
        return ordered, np.ones(ordered.size, dtype=np.int64)
    starts = run_starts(ordered, new_value)
    return ordered[starts], np.diff(starts, append=ordered.size).astype(np.int64, copy=False)


def run_starts(ordered: npt.NDArray[Any],
               new_value: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.intp]:
    """Where each run of equal values in the sorted ``ordered`` starts (``new_value``:
    ``ordered[1:] != ordered[:-1]``, when the caller has it)."""
    if ordered.size == 0:
        return np.zeros(0, dtype=np.intp)
    if new_value is None:
        new_value = ordered[1:] != ordered[:-1]
    return np.concatenate(([0], np.flatnonzero(new_value) + 1))


def _sum_panes(a: Pane, b: Pane) -> Pane:
    slots: list[npt.NDArray[np.int32]] = []
    counts: list[IntArray] = []
    for sa, ca, sb, cb in zip(a.slots, a.counts, b.slots, b.counts, strict=True):
        occupied, summed = sorted_counts(np.concatenate([sa, sb]), np.concatenate([ca, cb]))
        slots.append(occupied)
        counts.append(summed)
    return Pane(a.id, a.events + b.events, slots, counts, a.missing + b.missing)
