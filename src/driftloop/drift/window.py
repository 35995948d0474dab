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

    def add(self, codes: Codes) -> None:
        """Append a (features × rows) block of slot codes."""
        rows = codes.shape[1]
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
            present = row[row >= 0]
            missing[f] = row.size - present.size
            if size <= 4 * present.size:  # small slot space: count densely
                dense = np.bincount(present, minlength=size)
                occupied = np.flatnonzero(dense).astype(np.int32)
                slots.append(occupied)
                counts.append(dense[occupied].astype(np.int64))
            else:
                occupied, count = sorted_counts(present, np.ones(present.size, dtype=np.int64))
                slots.append(occupied)
                counts.append(count)
        return Pane(self.id, self.events, slots, counts, missing)


class PaneWindow:
    """Up to ``panes`` closed panes with dense per-slot totals, and the open pane."""

    def __init__(self, slot_sizes: Sequence[int], panes: int, first_id: int = 0) -> None:
        self.slot_sizes = list(slot_sizes)
        self.panes = panes
        self.closed: list[Pane] = []
        self.totals: list[IntArray] = [np.zeros(k, dtype=np.int64) for k in self.slot_sizes]
        self.missing = np.zeros(len(self.slot_sizes), dtype=np.int64)
        self.events = 0
        self.open = OpenPane(first_id, self.slot_sizes)

    def occupied(self, feature: int) -> tuple[npt.NDArray[np.intp], IntArray]:
        """The window's occupied slots of ``feature`` in increasing order, with their counts.

        A reference with many distinct values has far more slots than a window has
        events, so the slots come from the panes' own (sparse) lists rather than from a
        scan of the dense totals; small slot spaces are scanned directly.
        """
        total = self.totals[feature]
        if total.size <= 4 * self.events or not self.closed:
            occupied = np.flatnonzero(total)
            return occupied, total[occupied]
        # Each pane's slots are sorted: a stable sort (timsort) merges the runs.
        merged = np.sort(np.concatenate([pane.slots[feature] for pane in self.closed]),
                         kind="stable")
        first = np.ones(merged.size, dtype=bool)
        first[1:] = merged[1:] != merged[:-1]
        occupied = merged[first].astype(np.intp)
        return occupied, total[occupied]

    @property
    def newest_id(self) -> int | None:
        return self.closed[-1].id if self.closed else None

    def close_open(self, next_id: int) -> Pane:
        """Close the open pane, add it to the window, evict what fell out, open ``next_id``."""
        pane = self.open.close()
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
        for total, slots, counts in zip(self.totals, pane.slots, pane.counts, strict=True):
            total[slots] += sign * counts
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
    starts = np.flatnonzero(np.diff(ordered, prepend=np.int32(-1)))
    summed = np.add.reduceat(weights[order], starts) if starts.size else weights[:0]
    return ordered[starts].astype(np.int32), summed.astype(np.int64)


def _sum_panes(a: Pane, b: Pane) -> Pane:
    slots: list[npt.NDArray[np.int32]] = []
    counts: list[IntArray] = []
    for sa, ca, sb, cb in zip(a.slots, a.counts, b.slots, b.counts, strict=True):
        occupied, summed = sorted_counts(np.concatenate([sa, sb]), np.concatenate([ca, cb]))
        slots.append(occupied)
        counts.append(summed)
    return Pane(a.id, a.events + b.events, slots, counts, a.missing + b.missing)
