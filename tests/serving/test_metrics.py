"""ServerMetrics: what /metrics shows after the server records things, in one process and
summed over several worker processes."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from driftloop.drift import DriftDetector, DriftInputError
from driftloop.drift.profile import NumericProfile
from driftloop.serving.metrics import (
    MULTIPROC_ENV,
    ServerMetrics,
    mark_process_dead,
    render,
)

rng = np.random.default_rng(11)
N_REF = 600
REFERENCE = {
    "age": rng.integers(18, 81, N_REF).astype(float),  # discrete: values sit on the edges
    "income": rng.normal(50.0, 10.0, N_REF),
    "plan": rng.choice(["free", "pro", "team"], N_REF),
}
OUTPUTS = rng.random(N_REF)


def detector(window: int = 1000, **kw: Any) -> DriftDetector:
    return DriftDetector.from_reference(REFERENCE, output=OUTPUTS, categorical=["plan"],
                                        window=window, panes=1, clock=lambda: 1_700_000_000.0,
                                        **kw)


@pytest.fixture(autouse=True)
def single_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts outside multiprocess mode, whatever the caller's environment."""
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    yield


def scrape(body: bytes) -> list[Sample]:
    return [s for family in text_string_to_metric_families(body.decode())
            for s in family.samples]


def select(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = select(samples, name, **labels)
    assert len(found) == 1, (name, labels, found)
    return found[0].value


def test_requests_are_counted_by_version_slot_and_status_class() -> None:
    metrics = ServerMetrics(detector().profiles, model_name="churn")
    for seconds in (0.002, 0.004, 0.2):
        metrics.observe_request(3, "champion", seconds, 200)
    metrics.observe_request(3, "champion", 0.03, 503)
    metrics.observe_request(4, "candidate", 0.001, 201)
    samples = scrape(metrics.render()[0])
    ok = {"model": "churn", "version": "3", "slot": "champion", "status": "2xx"}
    assert value(samples, "driftloop_requests_total", **ok) == 3
    assert value(samples, "driftloop_requests_total", status="5xx") == 1
    assert value(samples, "driftloop_requests_total", version="4", slot="candidate") == 1
    assert value(samples, "driftloop_request_duration_seconds_count", **ok) == 3
    assert value(samples, "driftloop_request_duration_seconds_sum", **ok) == pytest.approx(0.206)
    assert value(samples, "driftloop_request_duration_seconds_bucket", le="0.005", **ok) == 2
    assert value(samples, "driftloop_request_duration_seconds_bucket", le="0.25", **ok) == 3
    with pytest.raises(ValueError, match="HTTP status"):
        metrics.observe_request(3, "champion", 0.1, 42)


def test_feature_bins_are_exactly_the_detectors_bins() -> None:
    """Counters per bin equal the detector's current histogram on the same rows, values on
    every bin edge included (where a Prometheus ``le`` bucket would disagree)."""
    profiles = detector().profiles
    ages = profiles[0]
    assert isinstance(ages, NumericProfile)
    edges = ages.bin_edges.tolist()
    age_values: list[Any] = [*edges, edges[0] - 1, edges[-1] + 1, 40.5, None, math.nan,
                             math.inf]
    n = len(age_values)
    columns = {
        "age": age_values,
        "income": rng.normal(60.0, 10.0, n).tolist(),
        "plan": (["free", "pro", "team", "enterprise", None] * n)[:n],
    }
    outputs = [*rng.random(n - 1).tolist(), None]
    rows = [{name: columns[name][i] for name in columns} for i in range(n)]

    metrics = ServerMetrics(profiles, model_name="churn")
    metrics.observe_features(rows, outputs=outputs)
    det = detector(window=n)
    det.observe(columns, output=outputs)
    report = det.report()

    samples = scrape(metrics.render()[0])
    for drift in [*report.features.values(), report.output]:
        assert drift is not None
        bins = select(samples, "driftloop_feature_bin_total", model="churn", feature=drift.name)
        bins.sort(key=lambda s: s.labels["bin_index"])
        assert tuple(s.labels["bin"] for s in bins) == drift.bins
        assert tuple(s.value for s in bins) == drift.current_histogram
        assert value(samples, "driftloop_feature_missing_total",
                     feature=drift.name) == drift.missing
    assert value(samples, "driftloop_feature_bin_total", feature="plan",
                 bin="(unseen)") == columns["plan"].count("enterprise") > 0
    assert value(samples, "driftloop_feature_missing_total", feature="age") == 3


def test_rows_without_a_column_do_not_count_it_and_outputs_may_come_from_rows() -> None:
    metrics = ServerMetrics(detector().profiles, model_name="churn")
    metrics.observe_features([{"plan": "pro", "output": 0.5}, {"age": 30.0, "extra": 1}])
    samples = scrape(metrics.render()[0])
    total = {name: sum(s.value for s in select(samples, "driftloop_feature_bin_total",
                                               feature=name))
             for name in ("age", "income", "plan", "output")}
    assert total == {"age": 1, "income": 0, "plan": 1, "output": 1}


def test_reference_ratio_is_the_reference_histogram() -> None:
    profiles = detector().profiles
    samples = scrape(ServerMetrics(profiles, model_name="churn").render()[0])
    for profile in profiles:
        ratios = select(samples, "driftloop_feature_reference_ratio", feature=profile.name)
        ratios.sort(key=lambda s: s.labels["bin_index"])
        expected = profile.reference_bins / profile.reference_bins.sum()
        np.testing.assert_allclose([s.value for s in ratios], expected)


def test_many_categories_are_lumped_into_other() -> None:
    plan = ["a"] * 50 + ["b"] * 30 + ["c"] * 10 + ["d"] * 5 + ["e"] * 5
    profiles = DriftDetector.from_reference({"plan": plan}, categorical=["plan"]).profiles
    metrics = ServerMetrics(profiles, model_name="m", max_categories=2)
    metrics.observe_features([{"plan": p} for p in ["a", "c", "e", "zzz"]])
    samples = scrape(metrics.render()[0])
    bins = sorted(select(samples, "driftloop_feature_bin_total"),
                  key=lambda s: s.labels["bin_index"])
    assert [(s.labels["bin"], s.value) for s in bins] == [
        ("a", 1), ("b", 0), ("(other)", 2), ("(unseen)", 1)]
    ratios = sorted(select(samples, "driftloop_feature_reference_ratio"),
                    key=lambda s: s.labels["bin_index"])
    assert [s.value for s in ratios] == pytest.approx([0.5, 0.3, 0.2, 0.0])


def test_set_drift_publishes_the_report() -> None:
    det = detector(window=300)
    n = 300
    det.observe({"age": (REFERENCE["age"][:n] + 15).tolist(),
                 "income": REFERENCE["income"][:n].tolist(),
                 "plan": ["team"] * n}, output=OUTPUTS[:n].tolist())
    report = det.report()
    assert report.drifted
    metrics = ServerMetrics(det.profiles, model_name="churn")
    metrics.set_drift(report)
    samples = scrape(metrics.render()[0])

    def stat(feature: str, statistic: str) -> float:
        return value(samples, "driftloop_drift_statistic", feature=feature, statistic=statistic)

    for name in ("age", "income"):
        drift = report.features[name]
        assert stat(name, "ks") == pytest.approx(drift.ks_statistic)
        assert stat(name, "psi") == pytest.approx(drift.psi)
        assert stat(name, "js") == pytest.approx(drift.js_distance)
        assert value(samples, "driftloop_feature_drifted", feature=name) == drift.drifted
    assert stat("plan", "chi2") == pytest.approx(report.features["plan"].chi2_statistic)
    assert not select(samples, "driftloop_drift_statistic", feature="plan", statistic="ks")
    assert report.output is not None
    assert stat("output", "ks") == pytest.approx(report.output.ks_statistic)
    assert value(samples, "driftloop_dataset_drifted", model="churn") == 1
    assert value(samples, "driftloop_drifted_features_ratio") == pytest.approx(
        report.drift_share)
    assert value(samples, "driftloop_drift_window_events") == n
    assert value(samples, "driftloop_drift_window_fill_ratio") == 1.0
    assert value(samples, "driftloop_drift_last_evaluation_timestamp_seconds") == 1.7e9


def test_statistics_of_an_empty_window_are_nan_not_zero() -> None:
    det = detector()
    metrics = ServerMetrics(det.profiles, model_name="churn")
    metrics.set_drift(det.report())
    samples = scrape(metrics.render()[0])
    assert math.isnan(value(samples, "driftloop_drift_statistic", feature="age", statistic="ks"))
    assert value(samples, "driftloop_feature_drifted", feature="age") == 0
    assert value(samples, "driftloop_dataset_drifted") == 0


def test_serving_state_gauges_and_counters() -> None:
    metrics = ServerMetrics(detector().profiles, model_name="churn")
    metrics.set_champion(3, 10)
    metrics.set_champion(4, 11)
    metrics.set_traffic("canary", {"champion": 0.9, "candidate": 0.1})
    metrics.set_traffic("off", {"champion": 1.0})
    metrics.set_queue_depth("champion", 5)
    metrics.set_queue_depth("champion", 2)
    metrics.count_dropped("observation", 3)
    metrics.count_dropped("observation")
    for agreed, failed in [(True, False), (True, False), (False, False), (False, True)]:
        metrics.observe_shadow(agreed, failed=failed)
    samples = scrape(metrics.render()[0])
    assert value(samples, "driftloop_champion_info", version="4", generation="11") == 1
    assert value(samples, "driftloop_champion_info", version="3", generation="10") == 0
    assert value(samples, "driftloop_champion_version") == 4
    assert value(samples, "driftloop_traffic_weight_ratio", slot="champion") == 1.0
    assert value(samples, "driftloop_traffic_weight_ratio", slot="candidate") == 0.0
    assert value(samples, "driftloop_traffic_mode", mode="off") == 1
    assert value(samples, "driftloop_traffic_mode", mode="canary") == 0
    assert value(samples, "driftloop_queue_depth", queue="champion") == 2
    assert value(samples, "driftloop_dropped_total", kind="observation") == 4
    outcomes = {s.labels["outcome"]: s.value
                for s in select(samples, "driftloop_shadow_predictions_total")}
    assert outcomes == {"agreed": 2, "disagreed": 1, "failed": 1}


def test_a_refused_value_counts_nothing() -> None:
    metrics = ServerMetrics(detector().profiles, model_name="churn")
    with pytest.raises(DriftInputError, match="'income'"):
        metrics.observe_features([{"age": 30.0, "income": 1.0}, {"age": 31.0, "income": "x"}])
    samples = scrape(metrics.render()[0])
    assert sum(s.value for s in select(samples, "driftloop_feature_bin_total")) == 0
    with pytest.raises(ValueError, match="2 outputs for 1 rows"):
        metrics.observe_features([{"age": 30.0}], outputs=[0.1, 0.2])
    no_output = DriftDetector.from_reference(REFERENCE).profiles
    with pytest.raises(ValueError, match="no output profile"):
        ServerMetrics(no_output, model_name="m").observe_features([{}], outputs=[1.0])


def test_column_names_must_be_distinct() -> None:
    profiles = detector().profiles
    with pytest.raises(ValueError, match="'age' repeated"):
        ServerMetrics([*profiles, profiles[0]], model_name="m")


def test_instances_in_one_process_do_not_collide() -> None:
    first = ServerMetrics(detector().profiles, model_name="a")
    second = ServerMetrics(detector().profiles, model_name="b")
    first.observe_request(1, "champion", 0.01, 200)
    assert not select(scrape(second.render()[0]), "driftloop_requests_total")
    shared = CollectorRegistry()
    ServerMetrics(detector().profiles, model_name="c", registry=shared)
    assert select(scrape(render(shared)[0]), "driftloop_feature_reference_ratio", model="c")


def test_render_needs_a_registry_and_negotiates_openmetrics() -> None:
    with pytest.raises(ValueError, match="needs a registry"):
        render()
    metrics = ServerMetrics(detector().profiles, model_name="churn")
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    body, content_type = metrics.render(accept="application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def test_variable_set_after_prometheus_client_was_imported_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """This process imported prometheus_client without the variable: its metrics would
    stay in memory and never reach the merged /metrics, so construction refuses."""
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    with pytest.raises(RuntimeError, match="imported before"):
        ServerMetrics(detector().profiles, model_name="churn")


CHILD = """
import sys
import numpy as np
from driftloop.drift import DriftDetector
from driftloop.serving.metrics import ServerMetrics

role, n = sys.argv[1], int(sys.argv[2])
reference = {"x": np.arange(100.0), "plan": ["free", "pro"] * 50}
det = DriftDetector.from_reference(reference, window=n, panes=1)
metrics = ServerMetrics(det.profiles, model_name="churn")
metrics.set_champion(3, 7)
for _ in range(n):
    metrics.observe_request(3, "champion", 0.004, 200)
metrics.observe_features([{"x": float(i), "plan": "pro"} for i in range(n)])
metrics.set_queue_depth("champion", n)
metrics.count_dropped("observation", n)
if role == "leader":
    det.observe({"x": [float(i) for i in range(n)], "plan": ["pro"] * n})
    metrics.set_drift(det.report())
"""


def test_several_processes_are_summed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Two worker processes record into the shared directory; the parent's render merges:
    counters and histograms summed, queue depths summed, the leader's drift gauges once,
    the champion per worker; a dead worker's live gauges go, its counts stay."""
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    sizes = {"leader": 3, "worker": 4}
    children = {role: subprocess.Popen([sys.executable, "-c", CHILD, role, str(n)],
                                       env=dict(os.environ), stderr=subprocess.PIPE)
                for role, n in sizes.items()}
    for child in children.values():
        _, stderr = child.communicate(timeout=60)
        assert child.returncode == 0, stderr.decode()

    samples = scrape(render()[0])
    req = {"model": "churn", "version": "3", "slot": "champion", "status": "2xx"}
    assert value(samples, "driftloop_requests_total", **req) == 7
    assert value(samples, "driftloop_request_duration_seconds_count", **req) == 7
    assert value(samples, "driftloop_request_duration_seconds_bucket", le="0.005", **req) == 7
    assert value(samples, "driftloop_request_duration_seconds_bucket", le="0.0025", **req) == 0
    assert sum(s.value for s in select(samples, "driftloop_feature_bin_total", feature="x")) == 7
    assert value(samples, "driftloop_feature_bin_total", feature="plan", bin="pro") == 7
    assert value(samples, "driftloop_dropped_total", kind="observation") == 7
    assert value(samples, "driftloop_queue_depth", queue="champion") == 7  # livesum
    assert value(samples, "driftloop_feature_reference_ratio", feature="plan",
                 bin="free") == 0.5  # both processes wrote it: one series
    champions = select(samples, "driftloop_champion_info", version="3")
    assert sorted(s.labels["pid"] for s in champions) == sorted(
        str(c.pid) for c in children.values())

    det = DriftDetector.from_reference({"x": np.arange(100.0), "plan": ["free", "pro"] * 50},
                                       window=3, panes=1)
    det.observe({"x": [0.0, 1.0, 2.0], "plan": ["pro"] * 3})
    expected = det.report()
    ks = value(samples, "driftloop_drift_statistic", feature="x", statistic="ks")
    assert ks == pytest.approx(expected.features["x"].ks_statistic)
    assert value(samples, "driftloop_dataset_drifted") == expected.drifted

    mark_process_dead(children["leader"].pid)
    samples = scrape(render()[0])
    assert value(samples, "driftloop_queue_depth", queue="champion") == 4
    assert len(select(samples, "driftloop_champion_info")) == 1
    assert not select(samples, "driftloop_drift_statistic")
    assert value(samples, "driftloop_requests_total", **req) == 7
