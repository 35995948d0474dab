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
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Codes = npt.NDArray[np.int32]
IntArray = npt.NDArray[np.int64]


@dataclass
class Pane:
    """One closed pane: per feature the occupied slots, their counts and the missing count."""

    id: int
    events: int
    slots: list[npt.NDArray[np.int32]]
    counts: list[IntArray]
    missing: IntArray


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

    def close(self) -> Pane:
        slots: list[npt.NDArray[np.int32]] = []
        counts: list[IntArray] = []
        missing = np.zeros(self._codes.shape[0], dtype=np.int64)
        for f, (row, size) in enumerate(zip(self.codes, self._slot_sizes, strict=True)):
            occupied, count, missing[f] = count_codes(row, size)
            slots.append(occupied)
            counts.append(count)
        return Pane(self.id, self.events, slots, counts, missing)


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


#: Slot spaces up to this size keep dense running totals (at most 32 kB per feature);
#: larger ones (a numeric feature over a continuous reference has two slots per distinct
#: reference value) keep only their occupied slots, so the window costs nothing per
#: reference value and its statistics need no sort when they are read.
DENSE_SLOTS = 4096


class PaneWindow:
    """Up to ``panes`` closed panes with per-slot running totals, and the open pane."""

    def __init__(self, slot_sizes: Sequence[int], panes: int, first_id: int = 0) -> None:
        self.slot_sizes = list(slot_sizes)
        self.panes = panes
        self.closed: list[Pane] = []
        self._dense: list[IntArray | None] = [
            np.zeros(k, dtype=np.int64) if k <= DENSE_SLOTS else None for k in self.slot_sizes
        ]
        empty = (np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64))
        self._sparse: list[tuple[npt.NDArray[np.int32], IntArray]] = [empty] * len(slot_sizes)
        self.missing = np.zeros(len(self.slot_sizes), dtype=np.int64)
        self.events = 0
        #: Bumped whenever the closed panes' totals change: statistics computed at one
        #: version hold until the next.
        self.version = 0
        self.open = OpenPane(first_id, self.slot_sizes)

    def occupied(self, feature: int) -> tuple[npt.NDArray[np.intp], IntArray]:
        """The window's occupied slots of ``feature`` in increasing order, with their counts."""
        dense = self._dense[feature]
        if dense is None:
            slots, counts = self._sparse[feature]
            return slots.astype(np.intp), counts
        occupied = np.flatnonzero(dense)
        return occupied, dense[occupied]

    @property
    def newest_id(self) -> int | None:
        return self.closed[-1].id if self.closed else None

    def close_open(self, next_id: int) -> Pane:
        """Close the open pane, add it to the window, evict what fell out, open ``next_id``."""
        return self.close_as(self.open.close(), next_id)

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
        for f, (slots, counts) in enumerate(zip(pane.slots, pane.counts, strict=True)):
            dense = self._dense[f]
            if dense is not None:
                dense[slots] += sign * counts
                continue
            held, held_counts = self._sparse[f]
            if not held.size and sign > 0:
                self._sparse[f] = (slots, counts)
                continue
            # Both runs are sorted: the stable sort in sorted_counts merges them in O(n).
            merged, summed = sorted_counts(np.concatenate([held, slots]),
                                           np.concatenate([held_counts, sign * counts]))
            kept = summed != 0
            self._sparse[f] = (merged[kept], summed[kept])
        self.missing += sign * pane.missing
        self.events += sign * pane.events


def sorted_counts(
    slots: npt.NDArray[np.int32], weights: IntArray
) -> tuple[npt.NDArray[np.int32], IntArray]:
    """Distinct ``slots`` in increasing order with the summed ``weights`` of each.

    A sort and a run-length pass: several times faster than ``np.unique`` on the
    pane-sized integer arrays this is called with.
    """
    order = np.argsort(slots, kind="stable")
    ordered = slots[order]
    starts = run_starts(ordered)
    summed = np.add.reduceat(weights[order], starts) if starts.size else weights[:0]
    return ordered[starts].astype(np.int32), summed.astype(np.int64)


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
