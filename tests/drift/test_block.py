"""The small columns' statistics, all at once from one vector: the same numbers, to the
last bit, as the column-by-column path that large columns take, and KS as scipy's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from driftloop.drift import DriftDetector, window
from driftloop.drift.profile import NumericProfile


def _mixed(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Ties, values outside the reference's range, missing values, rare and unseen labels."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(3 + shift, rows).astype(np.float64)
    counts[rng.random(rows) < 0.02] = np.nan
    labels = rng.choice(["a", "b", "c", "rare"], rows, p=[0.5, 0.3, 0.199, 0.001])
    if shift:
        labels[:5] = "never seen"
    return pd.DataFrame({
        "count": counts,
        "rounded": np.round(rng.normal(shift, 1, rows), 1),
        "label": pd.Categorical(labels),
        "flag": rng.random(rows) < 0.1 + shift / 10,
    })


def _reports(monkeypatch: pytest.MonkeyPatch, live: pd.DataFrame,
             dense_slots: int) -> list[object]:
    monkeypatch.setattr(window, "DENSE_SLOTS", dense_slots)
    det = DriftDetector.from_reference(_mixed(5_000, 0), window=1_000, panes=4)
    assert len(det._window.block.columns) == (4 if dense_slots else 0)
    reports = []
    for start in range(0, len(live), 250):
        det.observe(live.iloc[start : start + 250])
        reports.append(det.report().features)
    return reports


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_the_block_equals_the_column_by_column_path(monkeypatch: pytest.MonkeyPatch,
                                                    shift: float) -> None:
    live = _mixed(2_000, 1, shift)
    together = _reports(monkeypatch, live, window.DENSE_SLOTS)
    one_by_one = _reports(monkeypatch, live, 0)
    assert together == one_by_one  # every field, floats to the last bit


def test_block_ks_equals_scipy_to_the_last_bit() -> None:
    rng = np.random.default_rng(2)
    reference = np.round(rng.normal(0, 1, 4_000), 1)
    det = DriftDetector.from_reference({"x": reference}, window=3_000, panes=3)
    assert det._window.block.columns == [0]
    assert isinstance(det.profiles[0], NumericProfile)
    for shift in (0.0, 0.05, 0.5, 5.0):  # 5.0: most of the window beyond the maximum
        live = np.round(rng.normal(shift, 1.3, 3_000), 2)  # between reference values too
        det.observe({"x": live})
        # method="asymp": the default "exact" mode recomputes D as a multiple of 1/lcm(n, m).
        expected = ks_2samp(reference, live, method="asymp").statistic
        assert det.report().features["x"].ks_statistic == expected


def test_pane_histograms_equal_the_column_by_column_path_and_the_raw_values(
        monkeypatch: pytest.MonkeyPatch) -> None:
    live = _mixed(1_000, 3, 0.5)
    histograms = []
    for dense_slots in (window.DENSE_SLOTS, 0):
        monkeypatch.setattr(window, "DENSE_SLOTS", dense_slots)
        det = DriftDetector.from_reference(_mixed(5_000, 0), window=1_000, panes=1)
        det.observe(live)
        histograms.append(det._pane_histograms(det._window.closed[-1]).tolist())
    assert histograms[0] == histograms[1]
    for j, profile in enumerate(det.profiles):
        if isinstance(profile, NumericProfile):
            x = live[profile.name].to_numpy(dtype=np.float64)
            raw = np.bincount(profile.bin_of(x[np.isfinite(x)]), minlength=profile.n_bins)
            assert histograms[0][j][: profile.n_bins] == raw.tolist()
