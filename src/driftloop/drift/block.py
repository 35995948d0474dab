"""Every small column's window statistics at once, from the block's one vector of totals.

The columns of at most :data:`~driftloop.drift.window.DENSE_SLOTS` slots keep their
window totals end to end in one vector (:class:`~driftloop.drift.window.SlotBlock`).
Over that vector a handful of whole-array passes give every such column's present count,
test-bin histogram and exact KS statistic together: on 1,000-row batches of a few dozen
features the per-column numpy calls they replace were most of an evaluation's cost.

KS is evaluated at the upper end of *every* slot, occupied or not. Just below a slot
both ECDFs equal their values at the end of the slot before; over a stretch the window
leaves empty its ECDF is flat while the reference's rises, so no point inside the stretch
holds a larger gap than its two ends. The statistic is therefore, bit for bit, the one
:func:`~driftloop.drift.stats.ks_statistic` computes at the occupied slots alone, and
equal to ``ks_2samp(method="asymp")`` (the tests compare all three exactly).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from driftloop.drift.profile import FeatureProfile, NumericProfile
from driftloop.drift.window import IntArray, SlotBlock

FloatArray = npt.NDArray[np.float64]


class BlockStatistics:
    """The small columns' statistics from their totals; built once per reference."""

    def __init__(self, profiles: Sequence[FeatureProfile], block: SlotBlock,
                 width: int) -> None:
        self.columns = block.columns
        self.starts = block.offsets[:-1]
        self.width = width
        sizes = np.diff(block.offsets)
        #: The block row (small column) of every slot of the vector.
        self._row_of_slot = np.repeat(np.arange(len(self.columns), dtype=np.intp), sizes)
        #: Every slot's test bin, as an index into the rows x width histogram matrix.
        bins = []
        #: The reference ECDF at the upper end of every slot (numeric columns; 0 else).
        self._reference_ecdf = np.zeros(block.size)
        numeric = []
        for row, j in enumerate(self.columns):
            profile = profiles[j]
            start = int(self.starts[row])
            if isinstance(profile, NumericProfile):
                numeric.append(row)
                within = np.repeat(np.arange(profile.n_bins), np.diff(profile.bin_slot_edges))
                slots = np.arange(profile.n_slots)
                self._reference_ecdf[start : start + slots.size] = (
                    profile.cumulative_at(slots) / profile.n)
            else:
                within = profile.slot_bins
            bins.append(row * width + within)
        self._bin_of_slot = np.concatenate(bins) if bins else np.zeros(0, dtype=np.intp)
        self.numeric_rows = np.array(numeric, dtype=np.intp)

    def histograms(self, slots: npt.NDArray[np.intp], counts: IntArray) -> IntArray:
        """Rows x width test-bin counts of ``counts`` held in the vector's ``slots``."""
        return self._binned(self._bin_of_slot[slots], counts)

    def _binned(self, bins: npt.NDArray[np.intp], counts: IntArray) -> IntArray:
        """``counts`` summed into the rows x width histogram matrix at flat ``bins``."""
        flat = np.bincount(bins, weights=counts, minlength=len(self.columns) * self.width)
        return flat.astype(np.int64).reshape(len(self.columns), self.width)

    def evaluate(self, totals: IntArray) -> tuple[IntArray, FloatArray, IntArray]:
        """Per small column: its present count, its KS statistic (NaN for a categorical
        column or an empty window) and its test-bin histogram (rows x width)."""
        present = np.add.reduceat(totals, self.starts) if self.columns else totals[:0]
        statistic = np.full(len(self.columns), np.nan)
        if self.numeric_rows.size:
            running = np.cumsum(totals).astype(np.float64)
            before = np.concatenate(([0.0], running[self.starts[1:] - 1]))
            # Integer counts, exact in float64, divided as scipy divides them (an empty
            # column's 0 / 0 gives NaN, left out by the caller).
            with np.errstate(invalid="ignore", divide="ignore"):
                window = ((running - before[self._row_of_slot])
                          / present.astype(np.float64)[self._row_of_slot])
                gaps = np.maximum.reduceat(np.abs(self._reference_ecdf - window), self.starts)
            statistic[self.numeric_rows] = gaps[self.numeric_rows]
        return present, statistic, self._binned(self._bin_of_slot, totals)
