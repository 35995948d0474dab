"""DriftPolicy: corrections, effect floor, fill, dataset rule, consecutive alarms."""

from __future__ import annotations

import pytest

from driftloop.drift import DriftPolicy, FeatureDrift
from driftloop.drift.policy import AlarmState
from driftloop.drift.stats import ks_pvalue


def column(name: str, pvalue: float, js: float = 0.5, count: int = 1000) -> FeatureDrift:
    """A categorical column with the given p-value and effect sizes."""
    return FeatureDrift(name, "categorical", count, 0, chi2_statistic=1.0, chi2_pvalue=pvalue,
                        psi=js * 2, js_distance=js, total_variation=js / 2)


def numeric(name: str, d: float, js: float) -> FeatureDrift:
    """A numeric column: KS statistic ``d`` on 1000 vs 1000 values (p from scipy's formula)."""
    return FeatureDrift(name, "numeric", 1000, 0, reference_count=1000, ks_statistic=d,
                        ks_pvalue=ks_pvalue(d, 1000, 1000), psi=js * 2, js_distance=js,
                        total_variation=js)


def drifted(policy: DriftPolicy, columns: list[FeatureDrift], fill: float = 1.0) -> list[str]:
    return [c.name for c in policy.judge(columns, fill) if c.drifted]


def test_bonferroni_divides_alpha_by_the_number_of_tests() -> None:
    cols = [column("a", 0.004), column("b", 0.006), column("c", 0.5)]
    assert drifted(DriftPolicy(alpha=0.015, correction="bonferroni"), cols) == ["a"]


def test_benjamini_hochberg_uses_the_step_up_rule() -> None:
    # Sorted p: 0.004 <= 1/3*0.015, 0.009 <= 2/3*0.015 -> both rejected; 0.5 is not.
    cols = [column("a", 0.004), column("b", 0.009), column("c", 0.5)]
    assert drifted(DriftPolicy(alpha=0.015, correction="bh"), cols) == ["a", "b"]
    assert drifted(DriftPolicy(alpha=0.015, correction="bonferroni"), cols) == ["a"]


@pytest.mark.parametrize(("effect", "expected"), [("js", []), ("psi", ["a"]), ("ks", ["a"])])
def test_effect_floor_stops_significant_but_tiny_shifts(effect: str, expected: list) -> None:
    cols = [numeric("a", d=0.2, js=0.02)]  # p ~ 1e-18
    policy = DriftPolicy(effect=effect, effect_floor=0.03)  # type: ignore[arg-type]
    assert drifted(policy, cols) == expected


def test_ks_effect_uses_total_variation_for_categorical_features() -> None:
    policy = DriftPolicy(effect="ks", effect_floor=0.2)
    assert drifted(policy, [column("c", 1e-9, js=0.5)]) == ["c"]
    assert drifted(policy, [column("c", 1e-9, js=0.3)]) == []


def test_nothing_is_judged_before_the_window_fills_or_with_few_values() -> None:
    policy = DriftPolicy(min_fill=0.5, min_count=100)
    assert drifted(policy, [column("a", 1e-30)], fill=0.4) == []
    assert drifted(policy, [column("a", 1e-30)], fill=0.5) == ["a"]
    assert drifted(policy, [column("a", 1e-30, count=99)]) == []


def test_dataset_rule_share_and_critical_features() -> None:
    policy = DriftPolicy(drift_share=0.5, critical=("b",))
    judged = policy.judge([column("a", 1e-30), column("b", 0.9), column("c", 0.9)], 1.0)
    assert not policy.dataset_drifted(judged, None)  # 1 of 3 is not more than half
    judged = policy.judge([column("a", 0.9), column("b", 1e-30), column("c", 0.9)], 1.0)
    assert policy.dataset_drifted(judged, None)  # b is critical
    assert DriftPolicy().dataset_drifted(
        DriftPolicy().judge([column("a", 1e-30), column("b", 0.9)], 1.0), None
    )  # default: any one feature


def test_output_drift_alone_is_dataset_drift_only_when_critical() -> None:
    features = [column("a", 0.9)]
    output = column("output", 1e-30)
    judged = DriftPolicy().judge([*features, output], 1.0)
    assert DriftPolicy().dataset_drifted(judged[:1], judged[1])
    assert not DriftPolicy(output_critical=False).dataset_drifted(judged[:1], judged[1])


def test_numeric_decisions_agree_with_the_exact_pvalue() -> None:
    policy = DriftPolicy(alpha=0.05, correction="bh")
    for d in [0.01, 0.03, 0.05, 0.06, 0.07, 0.1]:
        col = numeric("a", d=d, js=0.5)
        assert drifted(policy, [col]) == (["a"] if col.ks_pvalue <= 0.05 else [])  # type: ignore[operator]


def test_alarm_needs_consecutive_evaluations_and_fires_once() -> None:
    state, policy = AlarmState(), DriftPolicy(consecutive=2, clear_after=1)
    fired = [state.update(d, ("a",), policy) is not None
             for d in [True, False, True, True, True, False, True, True]]
    assert fired == [False, False, False, True, False, False, False, True]


def test_an_episode_ends_only_after_clear_after_clean_evaluations() -> None:
    """A persistent shift that dips below the floor now and then is one alarm, not five."""
    state, policy = AlarmState(), DriftPolicy(consecutive=2, clear_after=3)
    verdicts = [True, True, False, True, True, False, False, True, True, False, False, False,
                True, True]
    alarms = [state.update(d, ("a",), policy) for d in verdicts]
    raised = [(k, a) for k, a in enumerate(alarms) if a is not None]
    assert [k for k, _ in raised] == [1, 13]  # the episode ends after 3 clean in a row
    assert raised[0][1][1] == 0 and raised[1][1][1] == 0
    assert raised[0][1][0] != raised[1][1][0]


def test_new_columns_within_an_episode_update_the_same_alarm() -> None:
    state, policy = AlarmState(), DriftPolicy(consecutive=1, clear_after=3)
    first = state.update(True, ("a",), policy)
    assert state.update(True, ("a",), policy) is None
    update = state.update(True, ("a", "b"), policy)
    assert first is not None and update is not None
    assert update == (first[0], 1)
    assert AlarmState.from_dict(state.to_dict()) == state


@pytest.mark.parametrize(("field", "value"), [
    ("alpha", 0.0), ("alpha", 1.5), ("correction", "holm"), ("effect", "kl"),
    ("effect_floor", -1.0), ("min_fill", 2.0), ("min_count", 0), ("consecutive", 0),
    ("drift_share", 1.0), ("clear_after", 0), ("false_alarms_per_million", 0.0),
    ("false_alarms_per_day", -1.0),
])
def test_bad_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"DriftPolicy.{field}"):
        DriftPolicy(**{field: value})  # type: ignore[arg-type]


def test_round_trips_through_a_dict_and_refuses_unknown_fields() -> None:
    policy = DriftPolicy(alpha=0.01, critical=("a",))
    assert DriftPolicy.from_dict(policy.to_dict()) == policy
    with pytest.raises(ValueError, match="'nope'"):
        DriftPolicy.from_dict({"nope": 1})
