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
