"""Reference profiles: a whole table counted at once, and the bins laid over the slots."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.drift.profile import NumericProfile, sorted_runs
from driftloop.drift.window import count_codes

RNG = np.random.default_rng(7)
REFERENCE = np.round(RNG.normal(0.0, 1.0, 5_000), 2)  # many ties, ~600 distinct values


def _live(case: str) -> np.ndarray:
    """Live values that stress every slot rule: equal to reference values, between
    them, outside the range, tied, missing and infinite."""
    if case == "shifted with ties":
        return np.round(RNG.normal(0.5, 1.5, 4_000), 3)
    if case == "continuous":
        return RNG.normal(0.2, 1.0, 4_000)
    if case == "reference values only":
        return RNG.choice(REFERENCE, 4_000)
    if case == "outside and missing":
        x = RNG.normal(0.0, 10.0, 4_000)
        x[RNG.random(x.size) < 0.1] = np.nan
        x[:5] = [np.inf, -np.inf, REFERENCE.min() - 1, REFERENCE.max() + 1, REFERENCE.max()]
        return x
    if case == "all missing":
        return np.full(50, np.nan)
    if case == "long, few distinct":  # counted by hash (HASHED_MIN)
        return np.round(RNG.normal(0.3, 1.0, 20_000), 1)
    raise AssertionError(case)


@pytest.mark.parametrize("resolution", [None, 0.05])
@pytest.mark.parametrize("case", ["shifted with ties", "continuous", "reference values only",
                                  "outside and missing", "all missing", "long, few distinct"])
def test_counting_a_table_equals_encoding_it_and_closing_its_pane(case: str,
                                                                   resolution: float | None
                                                                   ) -> None:
    profile = NumericProfile.build("x", REFERENCE, 10, resolution)
    live = _live(case)
    slots, counts, missing = profile.count(live)
    want_slots, want_counts, want_missing = count_codes(profile.encode(live), profile.n_slots)
    np.testing.assert_array_equal(slots, want_slots)
    np.testing.assert_array_equal(counts, want_counts)
    assert missing == want_missing
    assert slots.dtype == np.int32 and counts.dtype == np.int64
    assert int(counts.sum()) + missing == live.size


@pytest.mark.parametrize("values", [
    RNG.normal(size=1_000),                                # no ties
    np.round(RNG.normal(size=1_000), 1),                   # ties
    np.array([np.nan, 1.0, -np.inf, 1.0, np.inf, -0.0, 0.0, np.nan, 2.0]),
    np.array([np.nan, np.inf]),
    np.zeros(0),
    # Long columns of few distinct values are counted by hash (HASHED_MIN), with the
    # same answer; a long continuous one is sorted.
    np.where(RNG.random(20_000) < 0.05, np.nan, RNG.integers(-50, 50, 20_000) / 4),
    np.concatenate([RNG.choice([0.0, -0.0, 1.5, np.inf, -np.inf, 7.0], 9_000), [np.nan]]),
    RNG.normal(size=20_000),
], ids=["no ties", "ties", "specials", "none finite", "empty", "long, few distinct",
        "long, zeros and infinities", "long, continuous"])
def test_sorted_runs_are_numpys_unique_of_the_finite_values(values: np.ndarray) -> None:
    distinct, runs, missing = sorted_runs(values)
    finite = values[np.isfinite(values)]
    want_distinct, want_runs = np.unique(finite, return_counts=True)
    np.testing.assert_array_equal(distinct, want_distinct)
    np.testing.assert_array_equal(runs, want_runs)
    assert runs.dtype == np.int64
    assert missing == values.size - finite.size


@pytest.mark.parametrize("reference", [
    REFERENCE,
    RNG.lognormal(0.0, 1.0, 3_000),
    np.where(RNG.random(3_000) < 0.9, 0.0, RNG.exponential(5.0, 3_000)),  # a heavy atom
    np.array([1.0, 2.0, 2.0, 3.0]),                                        # fewer values than bins
])
def test_each_bin_holds_the_slots_the_slot_rule_puts_in_it(reference: np.ndarray) -> None:
    """The bins' first slots and reference counts, against the rule written per slot:
    equal-slot ``2i + 1`` and the between-slot after it belong to value ``i``'s bin, slot
    0 to the underflow bin and the last slot to the overflow bin."""
    profile = NumericProfile.build("x", reference, 10)
    k = profile.values.size
    value_bins = np.searchsorted(profile.cuts, profile.values, side="right") + 1
    slot_bins = np.empty(2 * k + 1, dtype=np.int64)
    slot_bins[0], slot_bins[1::2], slot_bins[2::2] = 0, value_bins, value_bins
    slot_bins[-1] = profile.n_bins - 1
    np.testing.assert_array_equal(profile.bin_first_slot,
                                  np.searchsorted(slot_bins, np.arange(profile.n_bins)))
    np.testing.assert_array_equal(
        profile.reference_bins,
        np.bincount(value_bins, weights=profile.counts, minlength=profile.n_bins))
    np.testing.assert_array_equal(profile.cumulative,
                                  np.concatenate(([0], np.cumsum(profile.counts))))
