"""What a detector holds per distinct reference value, and what a worker ships per pane."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np

from driftloop.drift import DriftDetector


def test_ram_per_distinct_reference_value_is_at_most_24_bytes() -> None:
    rng = np.random.default_rng(0)
    reference = {f"x{k}": rng.normal(size=200_000) for k in range(3)}
    gc.collect()
    tracemalloc.start()
    det = DriftDetector.from_reference(reference, window=1000)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    distinct = 3 * 200_000
    # values (8 B) + counts (8 B) + cumulative counts (8 B); the window holds nothing
    # per reference value. A little slack for the fixed-size parts.
    assert held / distinct <= 24.5, held / distinct
    assert len(det.to_bytes()) / distinct <= 16.1


def test_window_bytes_of_a_continuous_window_stay_small() -> None:
    rng = np.random.default_rng(1)
    reference = {f"x{k:02d}": rng.normal(size=50_000) for k in range(25)}
    det = DriftDetector.from_reference(reference, window=10_000, panes=10)
    det.observe({k: rng.choice(v, 10_000) for k, v in reference.items()})
    shipped = len(det.window_bytes())
    # 25 x 10k present values: was 12 B each (int32 slot + int64 count), ~1.5 B deflated.
    assert shipped / (25 * 10_000) <= 2.5, shipped
    leader = DriftDetector.from_reference(reference, window=10_000, panes=10)
    leader.merge_window_bytes(det.window_bytes())
    assert leader.report().features == det.report().features


def test_resolution_bounds_distinct_values_and_stays_exact_for_rounded_data() -> None:
    from scipy.stats import ks_2samp  # noqa: PLC0415

    rng = np.random.default_rng(2)
    reference, live = rng.normal(size=100_000), rng.normal(0.05, 1.0, size=2_000)
    det = DriftDetector.from_reference({"x": reference}, resolution={"x": 0.01},
                                       window=2_000, panes=1)
    profile = det.profiles[0]
    span = reference.max() - reference.min()
    assert profile.values.size <= span / 0.01 + 1 < 2_000  # from 100,000 distinct
    det.observe({"x": live})
    feature = det.report().features["x"]
    rounded = ks_2samp(np.round(reference / 0.01) * 0.01, np.round(live / 0.01) * 0.01,
                       method="asymp")
    assert abs(feature.ks_statistic - rounded.statistic) <= 1e-12
    raw = ks_2samp(reference, live).statistic
    assert feature.ks_statistic <= raw + 1e-12  # rounding can only hide a gap
    restored = DriftDetector.from_bytes(det.to_bytes())
    assert restored.profiles[0].resolution == 0.01
    assert restored.fingerprint == det.fingerprint
    assert det.fingerprint != DriftDetector.from_reference({"x": reference}).fingerprint
    assert det.observe({"x": 0.123456}) == [] and profile.encode_one(0.123456) == \
        int(profile.encode(np.array([0.12]))[0])
