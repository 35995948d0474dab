"""DriftDetector behaviour: inputs it accepts, errors that name the feature, panes, alarms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests.drift.helpers import fixed_clock

from driftloop.drift import (
    DriftDetector,
    DriftInputError,
    DriftPolicy,
    IncompatibleDetectorError,
)
from driftloop.drift.dispersion import MIN_HISTORY
from driftloop.drift.stats import ks_pvalue

rng = np.random.default_rng(7)
REFERENCE = pd.DataFrame({
    "age": rng.normal(40, 10, 4000),
    "income": rng.lognormal(10, 1, 4000),
    "plan": rng.choice(["free", "pro", "team"], 4000),
    "active": rng.choice([True, False], 4000),
})


def make(**kw: object) -> DriftDetector:
    kw.setdefault("window", 1000)
    kw.setdefault("panes", 2)
    return DriftDetector.from_reference(REFERENCE, clock=fixed_clock, **kw)


def stationary(n: int, seed: int = 1) -> pd.DataFrame:
    return REFERENCE.sample(n, replace=True, random_state=seed).reset_index(drop=True)


def warmed(det: DriftDetector, output: object = None) -> DriftDetector:
    """``det`` after the stationary panes it needs before it may alarm (MIN_HISTORY + 1)."""
    rows = (MIN_HISTORY + 1) * det.pane_size
    det.observe(stationary(rows, seed=99), output=None if output is None else output[:rows])
    assert not det.last_report.warming_up  # type: ignore[union-attr]
    return det


def test_kinds_are_inferred_and_overridable() -> None:
    kinds = {p.name: p.kind for p in make().profiles}
    assert kinds == {"age": "numeric", "income": "numeric", "plan": "categorical",
                     "active": "categorical"}
    kinds = {p.name: p.kind for p in make(categorical=["age"]).profiles}
    assert kinds["age"] == "categorical"


@pytest.mark.parametrize("convert", [
    pd.DataFrame.copy,
    pa.Table.from_pandas,
    lambda df: {c: df[c].to_numpy() for c in df.columns},
    lambda df: {c: df[c].tolist() for c in df.columns},
], ids=["pandas", "arrow", "numpy", "lists"])
def test_every_table_type_gives_the_same_report(convert) -> None:  # type: ignore[no-untyped-def]
    batch = stationary(1000)
    expected = make()
    expected.observe(batch)
    det = DriftDetector.from_reference(convert(REFERENCE), window=1000, panes=2,
                                       clock=fixed_clock)
    det.observe(convert(batch))
    assert det.report() == expected.report()


def test_rows_and_batches_give_the_same_report() -> None:
    batch = stationary(1200)
    by_row, by_batch = make(), make()
    for row in batch.to_dict(orient="records"):
        by_row.observe(row)
    by_batch.observe(batch)
    assert by_row.report() == by_batch.report()
    assert by_row.events_seen == by_batch.events_seen == 1200


def test_a_table_observed_as_one_pane_reports_as_observing_it_row_block_by_block() -> None:
    """observe_pane (a batch report's path: values counted, not encoded) leaves the window,
    the report and the alarm as observe() of the same rows and the pane's close do."""
    scores = REFERENCE["age"].to_numpy() / 100
    dets = [warmed(make(output=scores, policy=DriftPolicy(consecutive=1)),
                   output=np.resize(scores, 5000)) for _ in range(2)]
    batch = stationary(500).assign(age=lambda f: f["age"].mask(f.index % 17 == 0) + 5.0)
    output = np.round(batch["income"].to_numpy() / 1e5, 2)
    by_rows = dets[0].observe(batch, output=output)
    as_pane = dets[1].observe_pane(batch, output=output)
    assert len(as_pane) == len(by_rows) == 1  # an alarm's id is its own; the rest is equal
    assert (as_pane[0].report, as_pane[0].events_seen) == (by_rows[0].report,
                                                           by_rows[0].events_seen)
    assert dets[1].report() == dets[0].report()
    assert dets[1].events_seen == dets[0].events_seen


def test_observe_pane_is_refused_where_it_cannot_stand_for_observe() -> None:
    timed = DriftDetector.from_reference(REFERENCE, pane_seconds=10, clock=fixed_clock)
    with pytest.raises(DriftInputError, match="count-based panes"):
        timed.observe_pane(stationary(10))
    started = make()
    started.observe(stationary(10))
    with pytest.raises(DriftInputError, match="empty open pane"):
        started.observe_pane(stationary(10))
    with pytest.raises(DriftInputError, match="not one row"):
        make().observe_pane(stationary(1).iloc[0].to_dict())
    with pytest.raises(DriftInputError, match="'plan': has 9 values where 'age' has 10"):
        make().observe_pane({**{c: stationary(10)[c] for c in REFERENCE},
                             "plan": ["free"] * 9})


def test_missing_values_are_counted_not_binned() -> None:
    det = make()
    batch = stationary(1000)
    batch.loc[:99, "age"] = np.nan
    batch.loc[100:149, "age"] = np.inf
    batch["plan"] = batch["plan"].astype(object)
    batch.loc[:9, "plan"] = None
    det.observe(batch)
    age = det.report().features["age"]
    assert (age.count, age.missing, age.missing_share) == (850, 150, 0.15)
    assert sum(age.current_histogram) == 850
    plan = det.report().features["plan"]
    assert (plan.count, plan.missing) == (990, 10)


def test_pandas_nullable_and_category_dtypes() -> None:
    reference = pd.DataFrame({
        "n": pd.array([1, 2, None, 4] * 50, dtype="Int64"),
        "c": pd.Categorical(["x", "y", None, "x"] * 50),
    })
    det = DriftDetector.from_reference(reference, window=100, panes=1, clock=fixed_clock)
    assert [p.kind for p in det.profiles] == ["numeric", "categorical"]
    det.observe(reference.iloc[:100])
    rep = det.report()
    assert (rep.features["n"].missing, rep.features["c"].missing) == (25, 25)
    assert rep.features["n"].ks_statistic == 0.0


def test_panes_evict_old_counts() -> None:
    det = make(window=1000, panes=4)
    det.observe(stationary(250))
    assert det.report().window_size == 250
    det.observe(stationary(2000, seed=2))
    assert det.report().window_size == 1000
    det.observe(stationary(100, seed=3))  # stays in the open pane
    assert det.report().window_size == 1000


def test_open_pane_is_not_reported_until_it_closes() -> None:
    det = make(window=1000, panes=2)
    det.observe(stationary(499))
    assert det.report().window_size == 0
    assert det.report().features["age"].ks_statistic is None


def test_shift_raises_one_alarm_per_episode() -> None:
    det = warmed(make(window=1000, panes=2, policy=DriftPolicy(consecutive=2, clear_after=3)))
    before = det.events_seen
    assert det.observe(stationary(2000)) == []
    shifted = stationary(3000, seed=5)
    shifted["age"] += 10
    events = det.observe(shifted)
    assert len(events) == 1
    event = events[0]
    assert event.drifted_features == ("age",)
    assert event.report.features["age"].drifted
    assert event.events_seen == before + 2000 + 1000  # two shifted panes of 500
    back = det.observe(stationary(1000, seed=6))
    assert back == [] and not det.last_report.drifted  # type: ignore[union-attr]
    assert det.observe(shifted) == []  # one clean evaluation: still the same episode
    assert det.observe(stationary(2000, seed=7)) == []  # the first pane is half shifted
    assert len(det.observe(shifted)) == 1  # three clean evaluations ended it


def test_new_category_is_caught_by_the_unseen_bucket() -> None:
    det = warmed(make(policy=DriftPolicy(consecutive=1)))
    batch = stationary(1000)
    batch.loc[:199, "plan"] = "enterprise"
    events = det.observe(batch)
    assert [e.drifted_features for e in events] == [("plan",)]
    plan = det.report().features["plan"]
    assert plan.bins[-1] == "(unseen)" and plan.current_histogram[-1] == 200


def test_output_is_monitored_like_a_feature() -> None:
    scores = REFERENCE["age"].to_numpy() / 100
    det = DriftDetector.from_reference(REFERENCE, output=scores, window=1000, panes=2,
                                       clock=fixed_clock, policy=DriftPolicy(consecutive=1))
    warmed(det, output=np.resize(scores, 5000))
    batch = stationary(1000)
    events = det.observe(batch, output=np.full(1000, 0.9))
    rep = det.report()
    assert rep.output is not None and rep.output.drifted and rep.drifted
    assert rep.drifted_features == () and len(events) == 1
    with pytest.raises(DriftInputError, match="'output'"):
        det.observe(batch)


def test_time_based_panes_close_when_time_moves_on() -> None:
    det = DriftDetector.from_reference(REFERENCE, pane_seconds=10, panes=3, clock=fixed_clock)
    det.observe(stationary(100), timestamp=5)
    det.observe(stationary(100), timestamp=9)
    assert det.report().window_size == 0
    det.observe(stationary(50), timestamp=12)  # closes pane 0
    assert det.report().window_size == 200
    det.tick(now=25)  # closes pane 1
    assert det.report().window_size == 250
    det.tick(now=1000)  # everything slides out
    assert det.report().window_size == 0


def test_reset_reference_starts_an_empty_window_on_new_data() -> None:
    det = make()
    det.observe(stationary(1000))
    new_reference = REFERENCE.assign(age=REFERENCE["age"] + 10)
    det.reset_reference(new_reference)
    assert det.report().window_size == 0
    shifted = stationary(1000).assign(age=lambda d: d["age"] + 10)
    det.observe(shifted)
    assert not det.report().features["age"].drifted
    with pytest.raises(DriftInputError, match="'plan'"):
        det.reset_reference(REFERENCE.drop(columns=["plan"]))


@pytest.mark.parametrize(("batch", "feature", "message"), [
    ({"age": 1.0, "income": 2.0, "plan": "pro"}, "active", "missing"),
    ({"age": 1.0, "income": 2.0, "plan": "pro", "active": True, "zip": 1}, "zip", "unknown"),
    ({"age": "old", "income": 2.0, "plan": "pro", "active": True}, "age", "expected numbers"),
    ({"age": [1.0, 2.0], "income": [2.0], "plan": ["a", "b"], "active": [True, True]},
     "income", "has 1 values"),
])
def test_bad_observations_name_the_feature(batch: dict, feature: str, message: str) -> None:
    with pytest.raises(DriftInputError, match=message) as info:
        make().observe(batch)
    assert info.value.feature == feature
    assert repr(feature) in str(info.value)


@pytest.mark.parametrize(("reference", "kw", "feature", "message"), [
    ({"a": [1.0, 1.0, 1.0], "b": [1, 2, 3]}, {}, "a", "constant"),
    ({"a": [np.nan, np.nan], "b": [1, 2]}, {}, "a", "no finite values"),
    ({"a": [], "b": []}, {"categorical": ["a", "b"]}, "a", "no values"),
    ({"a": [1, 2]}, {"categorical": ["z"]}, "z", "not a column"),
    ({"a": [1, 2]}, {"categorical": ["a"], "numeric": ["a"]}, "a", "both"),
    ({"a": [object(), object()]}, {"categorical": ["a"]}, "a", "categories must be"),
    ({"a": ["x", "y"]}, {"numeric": ["a"]}, "a", "expected numbers"),
])
def test_bad_references_name_the_feature(
    reference: dict, kw: dict, feature: str, message: str
) -> None:
    with pytest.raises(DriftInputError, match=message) as info:
        DriftDetector.from_reference(reference, **kw)
    assert info.value.feature == feature


def test_merge_refuses_different_references_and_windows() -> None:
    a = make()
    with pytest.raises(IncompatibleDetectorError, match="different references"):
        a.merge(DriftDetector.from_reference(REFERENCE.iloc[:100], window=1000, panes=2))
    with pytest.raises(IncompatibleDetectorError, match="different windows"):
        a.merge(make(window=2000))
    with pytest.raises(IncompatibleDetectorError):
        a.merge("not a detector")  # type: ignore[arg-type]


@pytest.mark.parametrize("kw", [{"panes": 0}, {"window": 1, "panes": 2}, {"pane_seconds": 0},
                                {"psi_bins": 1}])
def test_bad_window_settings_are_refused(kw: dict) -> None:
    name = next(iter(kw))
    with pytest.raises(ValueError, match=name):
        make(**kw)


def test_a_merging_process_alarms_on_its_replicas_windows() -> None:
    def replica() -> DriftDetector:
        return DriftDetector.from_reference(REFERENCE, pane_seconds=10, panes=2,
                                            clock=fixed_clock, policy=DriftPolicy(consecutive=2))

    leader, replicas = replica(), [replica(), replica()]
    events = []
    warm_up = [5 + 10 * k for k in range(MIN_HISTORY + 1)]
    for t in [*warm_up, *(w + 10 * len(warm_up) for w in (5, 15, 25, 35))]:
        for k, r in enumerate(replicas):
            rows = stationary(300, seed=t + k)
            rows["age"] += 8 if t not in warm_up else 0
            r.observe(rows, timestamp=t)
            r.tick(now=t + 10)
        leader.clear_window()
        for r in replicas:
            leader.merge_window_bytes(r.window_bytes())
        events += leader.evaluate()
    assert leader.report().window_size == 1200  # two panes of 2 x 300 events
    assert len(events) == 1 and events[0].drifted_features == ("age",)


def test_statistics_are_reused_only_while_the_window_is_unchanged() -> None:
    det = make(window=1000, panes=2)
    det.observe(stationary(1000))
    first = det.report()
    assert det.report().features == first.features  # no pane closed: the same numbers
    det.observe(stationary(499, seed=9))  # the open pane does not count yet
    assert det.report().features == first.features
    shifted = stationary(500, seed=10)
    shifted["age"] += 10
    det.observe(shifted)  # a pane closes and the oldest is evicted
    after = det.report().features["age"]
    assert after.ks_statistic != first.features["age"].ks_statistic
    assert DriftDetector.from_bytes(det.to_bytes()).report().features["age"] == after


def test_inflated_ks_pvalues_are_computed_with_the_window_statistics() -> None:
    """Clustered panes inflate every feature; the adjusted KS p-values the policy tests are
    then filled in one vectorised call when the window is evaluated, equal to the value
    each feature computes for itself (ks_pvalue at count / inflation)."""
    det = DriftDetector.from_reference(
        {f"x{i}": rng.normal(size=5000) for i in range(6)}, window=2000, panes=2)
    clustered = np.random.default_rng(3)
    for _ in range(MIN_HISTORY + 4):
        shift = clustered.normal(0, 0.1)  # one shift per pane: the panes cluster
        det.observe({f"x{i}": clustered.normal(shift, 1, 1000) for i in range(6)})
    features = det._compute_statistics()  # fresh, before the policy reads them
    assert all(f.inflation > 1 for f in features)
    for f in features:
        assert "adjusted_pvalue" in f.__dict__  # filled, not left to first use
        assert f.ks_statistic is not None
        assert f.adjusted_pvalue == ks_pvalue(f.ks_statistic, f.reference_count,
                                              f.effective_count)


def test_a_numeric_frame_counts_as_its_columns_one_by_one() -> None:
    """A numeric DataFrame converts in one call; the counts equal those of its columns
    passed as numpy arrays, nullable and object columns of numbers included."""
    reference = {"a": rng.normal(size=3000), "b": rng.integers(0, 50, 3000).astype(float),
                 "c": np.round(rng.normal(size=3000), 1)}
    live = pd.DataFrame({
        "a": rng.normal(size=400),
        "b": pd.array(rng.integers(0, 60, 400), dtype="Int64"),
        "c": pd.Series(np.round(rng.normal(size=400), 1), dtype=object),
    })
    live.loc[::7, "b"] = pd.NA
    live.loc[::11, "c"] = None
    live.loc[::13, "a"] = np.inf
    whole = DriftDetector.from_reference(reference, window=400, panes=1)
    split = DriftDetector.from_reference(reference, window=400, panes=1)
    whole.observe(live)
    split.observe({name: live[name].to_numpy(dtype="float64", na_value=np.nan)
                   for name in live.columns})
    assert whole.report().to_dict()["features"] == split.report().to_dict()["features"]
    with pytest.raises(DriftInputError, match=r"'c'.*expected numbers, got 'x'"):
        whole.observe(live.assign(c=["x"] * 400))
