"""The large numeric columns' statistics, all at once from their occupied slots: KS equal
to scipy's to the last bit whatever the block size, histograms equal to the raw values'
bin counts, and the reference held once."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp

from driftloop.drift import DriftDetector, sparse
from driftloop.drift.profile import NumericProfile


def _reference(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Large columns: continuous, tied (rounded, > 8,191 distinct values) and skewed."""
    return {
        "continuous": rng.normal(0, 1, 20_000),
        "tied": np.round(rng.uniform(0, 100, 60_000), 2),
        "skewed": rng.lognormal(0, 2, 15_000),
    }


def _windows(rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """Windows like the reference, shifted, beyond its maximum, a few values long (short
    blocks), and one with a column all missing."""
    def live(size: int, shift: float) -> dict[str, np.ndarray]:
        return {"continuous": rng.normal(shift, 1, size),
                "tied": np.round(rng.uniform(shift, 100 + shift, size), 2),
                "skewed": rng.lognormal(shift, 2, size)}
    missing = live(3_000, 0.2)
    missing["skewed"][:] = np.nan
    return [live(3_000, 0.0), live(3_000, 0.3), live(3_000, 500.0), live(1, 0.0),
            live(17, 0.1), live(33, 0.0), missing]


@pytest.mark.parametrize("block", [1, 3, sparse.BLOCK, 64])
def test_ks_equals_scipy_to_the_last_bit_for_any_block(monkeypatch: pytest.MonkeyPatch,
                                                       block: int) -> None:
    monkeypatch.setattr(sparse, "BLOCK", block)
    rng = np.random.default_rng(7)
    reference = _reference(rng)
    for live in _windows(rng):
        size = next(iter(live.values())).size
        det = DriftDetector.from_reference(reference, window=size, panes=1)
        assert det._window.layout.columns == [0, 1, 2]
        det.observe(live)
        for name, feature in det.report().features.items():
            present = live[name][np.isfinite(live[name])]
            if not present.size:
                assert feature.ks_statistic is None and feature.count == 0
                continue
            assert feature.count == present.size
            expected = ks_2samp(reference[name], present, method="asymp").statistic
            assert feature.ks_statistic == expected, (name, size)


def test_on_the_reference_s_own_values_ks_is_exact() -> None:
    """A window drawn from the reference's values: every window value equals a reference
    value, the case where the reference's own jump decides."""
    rng = np.random.default_rng(8)
    reference = _reference(rng)
    det = DriftDetector.from_reference(reference, window=5_000, panes=2)
    live = {name: rng.choice(values, 5_000) for name, values in reference.items()}
    det.observe(live)
    for name, feature in det.report().features.items():
        assert feature.ks_statistic == ks_2samp(reference[name], live[name],
                                                method="asymp").statistic


def test_histograms_equal_the_raw_values_bin_counts() -> None:
    rng = np.random.default_rng(9)
    reference = _reference(rng)
    live = _windows(rng)[1]
    det = DriftDetector.from_reference(reference, window=3_000, panes=1)
    det.observe(live)
    report = det.report()
    for profile in det.profiles:
        assert isinstance(profile, NumericProfile)
        raw = np.bincount(profile.bin_of(live[profile.name]), minlength=profile.n_bins)
        assert report.features[profile.name].current_histogram == tuple(raw.tolist())


def test_the_reference_cumulative_counts_are_held_once() -> None:
    det = DriftDetector.from_reference(_reference(np.random.default_rng(10)))
    shared = det._sparse._reference
    assert shared.size == sum(p.cumulative.size for p in det.profiles)
    for profile in det.profiles:
        assert isinstance(profile, NumericProfile)
        assert np.shares_memory(profile.cumulative, shared)
        assert profile.cumulative[-1] == profile.n
