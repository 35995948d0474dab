"""The detector's streaming statistics equal a from-scratch computation on the raw window.

Hypothesis draws references and streams with heavy ties, values outside the reference
range and missing values, and streams long enough to evict panes. Each case runs the
small columns' path (``drift.block``) or, with every column made large, the large
columns' (``drift.sparse``).
"""

from __future__ import annotations

import dataclasses
from unittest import mock

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp
from tests.drift.helpers import direct_psi, fixed_clock, window_rows

from driftloop.drift import DriftDetector, DriftPolicy, FeatureDrift, window
from driftloop.drift.profile import NumericProfile

# Values on a coarse grid make ties between and within samples common.
tied = st.integers(-8, 8).map(lambda i: i / 4)
finite_or_missing = st.one_of(tied, st.floats(-5, 5, allow_nan=False),
                              st.sampled_from([np.nan, np.inf, -np.inf]))


@st.composite
def numeric_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, int]:
    reference = np.array(draw(st.lists(st.one_of(tied, st.floats(-4, 4, allow_nan=False)),
                                       min_size=2, max_size=200)))
    assume(np.unique(reference).size >= 2)
    pane_size = draw(st.integers(1, 40))
    panes = draw(st.integers(1, 5))
    stream = np.array(draw(st.lists(finite_or_missing, min_size=1, max_size=400)))
    return reference, stream, pane_size, panes


#: Every column small (the block's path) or large (the sparse path).
paths = st.sampled_from([window.DENSE_SLOTS, 0])


def _path(dense_slots: int) -> mock._patch[int]:
    return mock.patch.object(window, "DENSE_SLOTS", dense_slots)


def _detector(reference: dict, pane_size: int, panes: int, **kw: object) -> DriftDetector:
    return DriftDetector.from_reference(reference, window=pane_size * panes, panes=panes,
                                        clock=fixed_clock, **kw)


@settings(max_examples=300, deadline=None)
@given(numeric_case(), st.integers(1, 64), paths)
def test_numeric_statistics_equal_recomputation(case: tuple, batch: int,
                                                dense_slots: int) -> None:
    reference, stream, pane_size, panes = case
    with _path(dense_slots):
        det = _detector({"x": reference}, pane_size, panes)
    for start in range(0, stream.size, batch):
        det.observe({"x": stream[start : start + batch]})
    raw = stream[window_rows(stream.size, pane_size, panes)]
    present = raw[np.isfinite(raw)]
    feature = det.report().features["x"]
    assert feature.count == present.size
    assert feature.missing == raw.size - present.size
    if present.size == 0:
        assert feature.ks_statistic is None
        return
    expected = ks_2samp(reference, present, method="asymp")
    assert abs(feature.ks_statistic - expected.statistic) <= 1e-12
    assert abs(feature.ks_pvalue - expected.pvalue) <= 1e-9

    profile = det.profiles[0]
    assert isinstance(profile, NumericProfile)
    bins = profile.n_bins
    ref_bins = np.bincount(profile.bin_of(reference), minlength=bins)
    cur_bins = np.bincount(profile.bin_of(present), minlength=bins)
    assert abs(feature.psi - direct_psi(ref_bins, cur_bins)) <= 1e-9
    assert abs(feature.js_distance - jensenshannon(ref_bins, cur_bins, base=2)) <= 1e-12
    assert feature.current_histogram == tuple(cur_bins.tolist())


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=100),
    st.lists(st.sampled_from(["a", "b", "c", "e", None]), min_size=1, max_size=300),
    st.integers(1, 30),
    st.integers(1, 4),
    paths,
)
def test_categorical_statistics_equal_recomputation(
    reference: list, stream: list, pane_size: int, panes: int, dense_slots: int
) -> None:
    with _path(dense_slots):
        det = _detector({"c": reference}, pane_size, panes, categorical=["c"])
    det.observe({"c": np.array(stream, dtype=object)})
    raw = stream[window_rows(len(stream), pane_size, panes)]
    present = [v for v in raw if v is not None]
    feature = det.report().features["c"]
    assert (feature.count, feature.missing) == (len(present), len(raw) - len(present))
    if not present:
        return
    categories = sorted(set(reference))
    ref_counts = np.array([reference.count(c) for c in categories] + [0])
    cur_counts = np.array([present.count(c) for c in categories]
                          + [sum(v not in categories for v in present)])
    keep = (ref_counts + cur_counts) > 0
    if keep.sum() >= 2:
        expected = chi2_contingency(np.vstack([ref_counts[keep], cur_counts[keep]]),
                                    correction=False)
        assert abs(feature.chi2_pvalue - expected.pvalue) <= 1e-9
    else:
        assert feature.chi2_pvalue == 1.0
    assert abs(feature.js_distance - jensenshannon(ref_counts, cur_counts, base=2)) <= 1e-12
    assert abs(feature.psi - direct_psi(ref_counts, cur_counts)) <= 1e-9


@settings(max_examples=100, deadline=None)
@given(numeric_case(), st.integers(1, 3), paths)
def test_merge_equals_one_detector_fed_both_streams(case: tuple, k: int,
                                                    dense_slots: int) -> None:
    reference, stream, pane_size, panes = case
    # Two replicas each close k panes; the merged window holds both streams' panes summed.
    n = pane_size * k
    first, second = np.resize(stream, n), np.resize(stream[::-1], n)
    with _path(dense_slots):
        a = _detector({"x": reference}, pane_size, panes)
        b = _detector({"x": reference}, pane_size, panes)
    a.observe({"x": first})
    b.observe({"x": second})
    merged = a.merge(b)
    kept_panes = min(k, panes)
    raw = np.concatenate([first[-kept_panes * pane_size :], second[-kept_panes * pane_size :]])
    present = raw[np.isfinite(raw)]
    feature = merged.report().features["x"]
    assert feature.count == present.size
    assert merged.events_seen == 2 * n
    if present.size:
        assert abs(feature.ks_statistic - ks_2samp(reference, present).statistic) <= 1e-12


@settings(max_examples=100, deadline=None)
@given(numeric_case(), st.data(), paths)
def test_time_panes_merge_equals_one_detector_fed_both_streams(
    case: tuple, data: st.DataObject, dense_slots: int
) -> None:
    reference, stream, _, panes = case
    times = sorted(data.draw(st.lists(st.floats(0, 20), min_size=stream.size,
                                      max_size=stream.size)))
    replica = data.draw(st.lists(st.booleans(), min_size=stream.size, max_size=stream.size))
    with _path(dense_slots):
        detectors = [
            DriftDetector.from_reference({"x": reference}, pane_seconds=2.0, panes=panes,
                                         clock=fixed_clock)
            for _ in range(3)
        ]
    single, a, b = detectors
    for value, t, which in zip(stream.tolist(), times, replica, strict=True):
        single.observe({"x": value}, timestamp=t)
        (a if which else b).observe({"x": value}, timestamp=t)
    newest = int(times[-1] // 2.0)
    for det in detectors:
        # Close the last open pane: the next pane's start (times[-1] + 2.0 can round into
        # the pane after it, 3.9999999999999996 + 2.0 == 6.0, and evict the last one).
        det.tick(now=(newest + 1) * 2.0)
    in_window = np.array([t // 2.0 > newest - panes for t in times])
    present = stream[in_window & np.isfinite(stream)]
    expected = single.report().features["x"]
    assert expected.count == present.size
    if present.size:
        assert abs(expected.ks_statistic - ks_2samp(reference, present).statistic) <= 1e-12
    merged = a.merge(b)
    # The window's statistics are equal; the inflation estimate (and what depends on it)
    # is the evaluating process's own history of panes, like its alarm streak.
    assert _window_only(merged.report().features["x"]) == _window_only(expected)
    assert merged.events_seen == single.events_seen


@settings(max_examples=100, deadline=None)
@given(numeric_case(), st.integers(0, 3), paths)
def test_bytes_round_trip_restores_an_equal_detector(case: tuple, consecutive: int,
                                                     dense_slots: int) -> None:
    reference, stream, pane_size, panes = case
    policy = DriftPolicy(consecutive=consecutive + 1, min_count=1)
    with _path(dense_slots):
        det = _detector({"x": reference, "c": (reference > 0).astype(str)}, pane_size, panes,
                        policy=policy, output=reference * 2)
    labels = np.where(np.nan_to_num(stream) > 0, "True", "other")
    det.observe({"x": stream, "c": labels}, output=stream)
    blob = det.to_bytes()
    with _path(dense_slots):
        restored = DriftDetector.from_bytes(blob, clock=fixed_clock)
    assert restored.to_bytes() == blob
    assert restored.report() == det.report()
    assert restored.policy == policy
    # Both go on identically: the open pane and the alarm streak were restored too.
    tail = {"x": stream[::-1], "c": labels[::-1]}
    assert [e.report for e in restored.observe(tail, output=stream)] == [
        e.report for e in det.observe(tail, output=stream)
    ]
    assert restored.report() == det.report()


def _window_only(feature: FeatureDrift) -> FeatureDrift:
    return dataclasses.replace(feature, inflation=1.0, missing_inflation=1.0, effect=None,
                               missing_effect=None, significant=False, drifted=False,
                               missing_drifted=False)
