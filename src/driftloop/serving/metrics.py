"""Prometheus metrics of the model server, correct with several uvicorn worker processes.

>>> import numpy as np
>>> from driftloop.drift import DriftDetector
>>> rng = np.random.default_rng(0)
>>> det = DriftDetector.from_reference({"x": rng.normal(size=500),
...                                     "plan": rng.choice(["free", "pro"], 500)})
>>> metrics = ServerMetrics(det.profiles, model_name="churn")
>>> metrics.observe_request(3, "champion", 0.012, 200)
>>> metrics.observe_features([{"x": 0.1, "plan": "team"}, {"x": None, "plan": "pro"}])
>>> body, content_type = metrics.render()
>>> for line in body.decode().splitlines():
...     if line.startswith("driftloop_feature_bin_total") and 'feature="plan"' in line:
...         print(line)
driftloop_feature_bin_total{bin="free",bin_index="0",feature="plan",model="churn"} 0.0
driftloop_feature_bin_total{bin="pro",bin_index="1",feature="plan",model="churn"} 1.0
driftloop_feature_bin_total{bin="(unseen)",bin_index="2",feature="plan",model="churn"} 1.0

Every metric is named ``driftloop_*`` and carries a ``model`` label, so several models'
servers can share one Prometheus job.

**Feature distributions: a counter per driftloop bin, not a Prometheus histogram.**
``driftloop_feature_bin_total{feature, bin_index, bin}`` counts live values in exactly the
bins the detector computes PSI and JS on (:meth:`NumericProfile.bin_labels`:
``< min``, ``[min, c1)``, ..., ``[cj, max]``, ``> max``; for categorical features one bin
per reference category plus ``(unseen)``), and ``driftloop_feature_reference_ratio``
holds the reference's share in the same bins. A Grafana bar chart of
``increase(driftloop_feature_bin_total{feature="$feature"}[$__range])`` normalised, next to
the reference ratio, is the picture of what the detector sees. The alternative, one
``Histogram`` per numeric feature with the bin edges as ``le`` bounds, was rejected:

- Prometheus buckets are right-closed (``le``: value <= bound) while driftloop's bins are
  left-closed (``[e_k, e_k+1)``), so a value equal to ``min`` or to a cut point would land
  one bucket lower than its driftloop bin (only at ``max`` do the two agree, driftloop's
  last inner bin being closed). The cut points are always reference *values*, so for a
  discrete feature (counts, ages, ratings) a large part of the mass sits exactly on the
  edges: the mismatch would be systematic, not a rounding detail, and the panel would
  disagree with the reported PSI.
- prometheus_client cannot give the children of one histogram family different buckets,
  so each feature would need its own metric name (``driftloop_feature_value_<name>``),
  with sanitising, possible name clashes, and no ``$feature`` template variable.
- Categorical features get the same family and the same panel.

What is lost is ``histogram_quantile()`` over the raw value; with decile bins its linear
interpolation would be coarse anyway. ``bin_index`` (zero-padded, so it sorts) keeps the
bins in order in Grafana and keeps series distinct where two edges print alike at six
significant digits. A categorical feature with more than ``max_categories`` reference
categories exports its most frequent ones and lumps the rest into ``(other)``, bounding
the series count (cardinality is what breaks a Prometheus server); numeric features have
``psi_bins + 2`` bins, bounded by the detector's own setting.

**Several processes.** When ``PROMETHEUS_MULTIPROC_DIR`` is set (before the process
imports prometheus_client: the library picks its value storage at import), every
process writes its metrics to memory-mapped files there and :func:`render` merges them
with ``MultiProcessCollector``: counters and histograms are summed over processes, dead
ones included, so a restarted worker never makes a counter go backwards (empty the
directory when the server starts, not when a worker does). Gauges need a rule, chosen per
gauge:

- ``livemostrecent`` for what a single writer (the leader evaluating drift) or every
  process alike (the traffic split, the reference ratios) sets: the newest write wins, so
  a value that falls is shown falling (``max`` would hold the highest ever) and a new
  leader's first evaluation replaces the old leader's. Series nobody has written yet are
  absent rather than 0, and the ``live`` variant drops a dead leader's values on
  :func:`mark_process_dead` instead of showing them as current.
- ``livesum`` for queue depths: every worker has its own queues, the backlog is the sum.
- ``liveall`` for ``driftloop_champion_info``: one series per worker (a ``pid`` label), so
  a rollout where workers serve different versions is visible as it happens.

Without the variable, metrics go into a private :class:`CollectorRegistry` (never the
global default) so that tests and several apps in one process do not collide.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    multiprocess,
    values,
)
from prometheus_client.exposition import choose_encoder

from driftloop.drift.detector import OUTPUT
from driftloop.drift.profile import MISSING, FeatureProfile, NumericProfile
from driftloop.drift.report import DriftReport, FeatureDrift

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
_LEGACY_MULTIPROC_ENV: Final = "prometheus_multiproc_dir"  # still honoured by the library

#: Request latency buckets (seconds): from 1 ms, since a batched tabular model answers in
#: a few ms, up to 10 s, where a client has long given up.
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                          1.0, 2.5, 5.0, 10.0)
#: Per-feature statistics exported by :meth:`ServerMetrics.set_drift`, by feature kind
#: (the KS test applies to numeric features, the chi-squared test to categorical ones).
STATISTICS: Final = {"numeric": ("ks", "psi", "js"), "categorical": ("chi2", "psi", "js")}
OTHER: Final = "(other)"
GaugeMode = Literal["livemostrecent", "livesum", "liveall"]
SHADOW_OUTCOMES: Final = ("agreed", "disagreed", "failed")
#: HTTP methods counted by name in ``driftloop_http_requests_total``; others as ``OTHER``.
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_dir() -> str | None:
    """The directory of the multiprocess metric files, or ``None`` in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(_LEGACY_MULTIPROC_ENV) or None


def render(
    registry: CollectorRegistry | None = None, *, accept: str | None = None
) -> tuple[bytes, str]:
    """The ``/metrics`` response body and its content type.

    In multiprocess mode the body is merged from every process's files and ``registry`` is
    ignored: this process's metrics are in those files already, so exposing the registry
    too would count them twice. Otherwise ``registry`` is required (there is no fallback
    to the global default registry). ``accept`` is the scraper's Accept header: OpenMetrics
    when it asks for it, the classic text format otherwise.
    """
    directory = multiprocess_dir()
    if directory is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    elif registry is None:
        raise ValueError("render() needs a registry outside multiprocess mode "
                         f"({MULTIPROC_ENV} is not set)")
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def mark_process_dead(pid: int) -> None:
    """Forget a dead worker's ``live*`` gauges (its queue depths, champion, and drift values
    if it was the leader); call it from the supervisor when a worker exits. Its counters
    and histograms stay: they are totals, and dropping them would make rates go negative.
    A no-op outside multiprocess mode."""
    directory = multiprocess_dir()
    if directory is not None:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class _Column:
    """One monitored column as exported: its bins and how a value finds its bin."""

    profile: FeatureProfile
    labels: tuple[str, ...]
    reference_ratio: tuple[float, ...]
    #: Numeric: first slot of every bin. Categorical: exported bin of every slot code.
    lookup: npt.NDArray[np.intp]

    @classmethod
    def of(cls, profile: FeatureProfile, max_categories: int) -> _Column:
        reference = [int(c) for c in profile.reference_bins.tolist()]
        if isinstance(profile, NumericProfile):
            return cls(profile, tuple(profile.bin_labels()), _ratios(reference),
                       profile.bin_first_slot.astype(np.intp))
        labels = profile.bin_labels()
        n_categories = len(profile.categories)
        if n_categories <= max_categories:
            return cls(profile, tuple(labels), _ratios(reference),
                       np.arange(n_categories + 1, dtype=np.intp))
        # Keep the most frequent categories (ties: reference order), in reference order.
        ranked = sorted(range(n_categories), key=lambda i: -reference[i])
        kept = sorted(ranked[:max_categories])
        position = {code: k for k, code in enumerate(kept)}
        other, unseen = len(kept), len(kept) + 1
        lookup = [position.get(code, other) for code in range(n_categories)] + [unseen]
        lumped = [0] * (len(kept) + 2)
        for code, count in enumerate(reference):
            lumped[lookup[code]] += count
        exported = tuple([labels[code] for code in kept] + [OTHER, labels[-1]])
        return cls(profile, exported, _ratios(lumped), np.array(lookup, dtype=np.intp))

    def bin_counts(self, values: Sequence[Any]) -> tuple[list[int], int]:
        """How many of ``values`` fall in each exported bin, and how many are missing, by
        the detector's rule for a batch (:meth:`encode`), so a value raises
        :class:`DriftInputError` exactly when ``DriftDetector.observe`` would. One
        vectorised pass per column: a Python look-up per value was a twentieth of a
        served request's CPU."""
        if not values:
            return [0] * len(self.labels), 0
        codes = self.profile.encode(values)
        present = codes[codes != MISSING]
        if isinstance(self.profile, NumericProfile):
            bins = np.searchsorted(self.lookup, present, side="right") - 1
        else:
            bins = self.lookup[present]
        counts = np.bincount(bins, minlength=len(self.labels))
        return counts.tolist(), len(values) - present.size


def _ratios(counts: list[int]) -> tuple[float, ...]:
    total = sum(counts)
    return tuple(c / total if total else 0.0 for c in counts)


class ServerMetrics:
    """The model server's metrics for one model; see the module docstring for the choices.

    ``profiles`` are ``DriftDetector.profiles`` (features, then the output if monitored:
    the profile named ``"output"``). Column names must be distinct, since they become the
    ``feature`` label. The bins are fixed here: after the detector swaps its reference,
    build a new ``ServerMetrics`` (in multiprocess mode, restart the workers too, since
    series cannot be deleted from the shared files).
    """

    def __init__(
        self,
        profiles: Sequence[FeatureProfile],
        *,
        model_name: str,
        registry: CollectorRegistry | None = None,
        latency_buckets: Sequence[float] = LATENCY_BUCKETS,
        max_categories: int = 100,
    ) -> None:
        if max_categories < 1:
            raise ValueError(f"max_categories must be >= 1, got {max_categories}")
        names = [p.name for p in profiles]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"column names must be distinct (they are the feature label): "
                             f"{', '.join(map(repr, duplicates))} repeated")
        self.model_name = model_name
        self.directory = multiprocess_dir()
        _check_storage(self.directory)
        self.registry = registry if registry is not None else CollectorRegistry()
        if self.directory is None:  # multiprocess mode reads every metric from the files
            from driftloop.models.gemini import gemini_registry  # noqa: PLC0415

            self.registry.register(gemini_registry())  # a served Gemini agent's calls
            _add_runtime_collectors(self.registry)
        self._columns = [_Column.of(p, max_categories) for p in profiles]

        def counter(name: str, doc: str, labels: Sequence[str]) -> Counter:
            return Counter(name, doc, ["model", *labels], registry=self.registry)

        def gauge(name: str, doc: str, labels: Sequence[str], mode: GaugeMode) -> Gauge:
            return Gauge(name, doc, ["model", *labels], registry=self.registry,
                         multiprocess_mode=mode)

        request_labels = ("version", "slot", "status")
        self._requests = counter(
            "driftloop_requests_total",
            "Predictions answered (each row of a batch), by the version and slot that "
            "answered and the status class of the response.", request_labels)
        self._latency = Histogram(
            "driftloop_request_duration_seconds",
            "Prediction request latency, from arrival to response.",
            ["model", *request_labels], registry=self.registry, buckets=latency_buckets)
        self._http_requests = counter(
            "driftloop_http_requests_total",
            "HTTP requests answered, by method, route template and exact status code.",
            ("method", "route", "status"))
        self._http_latency = Histogram(
            "driftloop_http_request_duration_seconds",
            "HTTP request latency, from arrival to the end of the response, by route.",
            ["model", "method", "route"], registry=self.registry, buckets=latency_buckets)
        self._feature_bins = counter(
            "driftloop_feature_bin_total",
            "Live values per drift bin (the detector's PSI/JS bins; categorical: per "
            "category, with (unseen)).", ("feature", "bin_index", "bin"))
        self._feature_missing = counter(
            "driftloop_feature_missing_total",
            "Live values that were missing (None, NaN, +-inf).", ("feature",))
        self._reference_ratio = gauge(
            "driftloop_feature_reference_ratio",
            "Share of the reference data in each drift bin.",
            ("feature", "bin_index", "bin"), "livemostrecent")
        self._statistic = gauge(
            "driftloop_drift_statistic",
            "Drift statistic of a feature over the window at the last evaluation "
            "(NaN while the window holds no value of it).",
            ("feature", "statistic"), "livemostrecent")
        self._feature_drifted = gauge("driftloop_feature_drifted",
                                      "1 when the feature was judged drifted at the last "
                                      "evaluation.", ("feature",), "livemostrecent")
        self._dataset_drifted = gauge("driftloop_dataset_drifted",
                                      "1 when the dataset was judged drifted at the last "
                                      "evaluation.", (), "livemostrecent")
        self._drift_share = gauge("driftloop_drifted_features_ratio",
                                  "Share of input features judged drifted.", (),
                                  "livemostrecent")
        self._window_events = gauge("driftloop_drift_window_events",
                                    "Events in the drift window at the last evaluation.", (),
                                    "livemostrecent")
        self._window_fill = gauge("driftloop_drift_window_fill_ratio",
                                  "How full the drift window was at the last evaluation.", (),
                                  "livemostrecent")
        self._evaluated_at = gauge("driftloop_drift_last_evaluation_timestamp_seconds",
                                   "Unix time of the last drift evaluation.", (),
                                   "livemostrecent")
        self._newer_format = gauge(
            "driftloop_drift_newer_format_workers",
            "Workers whose drift windows a newer driftloop wrote, left out of the merged "
            "drift view until the drift leader runs that version too (finish the rolling "
            "upgrade). Set by the leader among several workers.", (), "livemostrecent")
        self._champion_info = gauge("driftloop_champion_info",
                                    "1 for the champion this process serves (0: a previous "
                                    "one).", ("version", "generation"), "liveall")
        self._champion_version = gauge("driftloop_champion_version",
                                       "Version of the champion, as last set.", (),
                                       "livemostrecent")
        self._traffic_weight = gauge("driftloop_traffic_weight_ratio",
                                     "Share of traffic per slot.", ("slot",), "livemostrecent")
        self._traffic_mode = gauge("driftloop_traffic_mode",
                                   "1 for the current traffic mode.", ("mode",),
                                   "livemostrecent")
        self._loop_state = gauge("driftloop_loop_state",
                                 "1 for the retraining loop's current state (IDLE, TRAINING, "
                                 "SHADOWING, ...).", ("state",), "livemostrecent")
        self._queue_depth = gauge("driftloop_queue_depth",
                                  "Items waiting in a queue, summed over worker processes.",
                                  ("queue",), "livesum")
        self._dropped = counter("driftloop_dropped_total",
                                "Items dropped (observations, log rows...), by kind.", ("kind",))
        self._shadow = counter("driftloop_shadow_predictions_total",
                               "Mirrored candidate predictions: agreed or disagreed with the "
                               "champion, or failed.", ("outcome",))

        # Children are created once here: series exist at 0 from the start (so the first
        # increment shows in increase()), and the request path skips the labels() lookup.
        self._bin_children: list[list[Counter]] = []
        self._missing_children: list[Counter] = []
        for column in self._columns:
            name = column.profile.name
            width = len(str(len(column.labels) - 1))
            children: list[Counter] = []
            for i, (label, ratio) in enumerate(
                zip(column.labels, column.reference_ratio, strict=True)
            ):
                index = str(i).zfill(width)
                children.append(self._feature_bins.labels(model_name, name, index, label))
                self._reference_ratio.labels(model_name, name, index, label).set(ratio)
            self._bin_children.append(children)
            self._missing_children.append(self._feature_missing.labels(model_name, name))
        self._shadow_children = {o: self._shadow.labels(model_name, o) for o in SHADOW_OUTCOMES}
        self._request_children: dict[tuple[int, str, str], tuple[Counter, Histogram]] = {}
        # The labelled children of each (method, route, status), looked up once: labels()
        # per request was a measurable share of /predict's CPU.
        self._http_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._output = next((i for i, c in enumerate(self._columns)
                             if c.profile.name == OUTPUT), None)
        self._champion: tuple[str, str] | None = None
        self._modes: set[str] = set()
        self._loop_states: set[str] = set()
        self._slots: set[str] = set()

    @property
    def multiprocess(self) -> bool:
        return self.directory is not None

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """:func:`render` of this instance's registry (every process's, in multiprocess)."""
        return render(self.registry, accept=accept)

    # ------------------------------------------------------------------ requests
    def observe_request(self, version: int, slot: str, seconds: float, status: int) -> None:
        """Count one answered prediction and its request's latency, by version, slot and
        the status class of the response (``2xx``, ``5xx``: exact codes would multiply these
        series for little insight; ``driftloop_http_requests_total`` has them). The server
        calls it from :class:`~driftloop.serving.request_metrics.RequestMetrics` once the
        response is sent, so a prediction whose answer then failed counts as failed."""
        key = (version, slot, _status_class(status))
        children = self._request_children.get(key)
        if children is None:
            labels = (self.model_name, str(version), slot, key[2])
            children = (self._requests.labels(*labels), self._latency.labels(*labels))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request of any route with its real status and latency.

        ``route`` is the route's template (``/api/models/{version}/promote``), never the
        raw path, so the series stay bounded; methods outside :data:`METHODS` count as
        ``OTHER``, since a client can send any word there."""
        method = method if method in METHODS else "OTHER"
        key = (method, route, status)
        children = self._http_children.get(key)
        if children is None:
            _status_class(status)
            children = (self._http_requests.labels(self.model_name, method, route, str(status)),
                        self._http_latency.labels(self.model_name, method, route))
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    # ------------------------------------------------------------------ features
    def observe_features(
        self, rows: Sequence[Mapping[str, Any]], outputs: Sequence[Any] | None = None
    ) -> None:
        """Count live values into the drift bins, and missing values per column.

        A column absent from a row is not counted (validating requests is the server's
        job, not the metrics'); keys that are not monitored columns are ignored. Output
        values come from ``outputs`` (one per row) when given, else from the rows' ``output``
        key. Every value is binned before anything is counted, so a value the detector
        would refuse raises :class:`DriftInputError` and leaves the counters untouched.
        """
        if outputs is not None:
            if self._output is None:
                raise ValueError("outputs given, but no output profile is monitored")
            if len(outputs) != len(rows):
                raise ValueError(f"{len(outputs)} outputs for {len(rows)} rows")
        tallies: list[tuple[list[int], int]] = []
        for i, column in enumerate(self._columns):
            name = column.profile.name
            if i == self._output and outputs is not None:
                given: Sequence[Any] = outputs
            else:
                given = [row[name] for row in rows if name in row]
            tallies.append(column.bin_counts(given))
        for children, missing, (counts, absent) in zip(
            self._bin_children, self._missing_children, tallies, strict=True
        ):
            for child, count in zip(children, counts, strict=True):
                if count:
                    child.inc(count)
            if absent:
                missing.inc(absent)

    # ------------------------------------------------------------------ drift
    def set_drift(self, report: DriftReport) -> None:
        """Publish one evaluation: per-feature statistics and verdicts, the dataset verdict,
        the drifted share and the window. Call it from the process that evaluates."""
        model = self.model_name
        columns = list(report.features.values())
        if report.output is not None:
            columns.append(report.output)
        for feature in columns:
            for statistic, value in _statistics(feature).items():
                self._statistic.labels(model, feature.name, statistic).set(
                    math.nan if value is None else value)
            self._feature_drifted.labels(model, feature.name).set(float(feature.drifted))
        self._dataset_drifted.labels(model).set(float(report.drifted))
        self._drift_share.labels(model).set(report.drift_share)
        self._window_events.labels(model).set(report.window_size)
        self._window_fill.labels(model).set(report.window_fill)
        self._evaluated_at.labels(model).set(report.evaluated_at)

    def set_newer_format_workers(self, count: int) -> None:
        """How many workers the drift leader's last step left out because a newer
        driftloop wrote their windows (0 once the rollout reached the leader)."""
        self._newer_format.labels(self.model_name).set(count)

    # ------------------------------------------------------------------ serving state
    def set_champion(self, version: int, generation: int) -> None:
        """The champion this process now serves. The previous one's info series drops to 0
        (series cannot be deleted in multiprocess mode; one behaviour in both modes keeps
        dashboards alike): query ``driftloop_champion_info == 1``."""
        current = (str(version), str(generation))
        if self._champion is not None and self._champion != current:
            self._champion_info.labels(self.model_name, *self._champion).set(0)
        self._champion_info.labels(self.model_name, *current).set(1)
        self._champion_version.labels(self.model_name).set(version)
        self._champion = current

    def set_traffic(self, mode: str, weights: Mapping[str, float]) -> None:
        """The traffic split: a weight per slot, and the mode as a 1-valued series. Modes
        and slots this process set before and that are no longer current go to 0."""
        for slot in self._slots - set(weights):
            self._traffic_weight.labels(self.model_name, slot).set(0.0)
        for slot, weight in weights.items():
            self._traffic_weight.labels(self.model_name, slot).set(weight)
        for old in self._modes - {mode}:
            self._traffic_mode.labels(self.model_name, old).set(0.0)
        self._traffic_mode.labels(self.model_name, mode).set(1.0)
        self._slots |= set(weights)
        self._modes.add(mode)

    def set_loop_state(self, state: str) -> None:
        """The retraining loop's state as a 1-valued series; states set before go to 0."""
        for old in self._loop_states - {state}:
            self._loop_state.labels(self.model_name, old).set(0.0)
        self._loop_state.labels(self.model_name, state).set(1.0)
        self._loop_states.add(state)

    def set_queue_depth(self, name: str, depth: int) -> None:
        """Depth of this process's queue ``name`` (a batching queue, the observation
        queue); summed over live processes."""
        self._queue_depth.labels(self.model_name, name).set(depth)

    def count_dropped(self, kind: str, n: int = 1) -> None:
        """Count ``n`` items of ``kind`` dropped (say, observations when the queue is full)."""
        self._dropped.labels(self.model_name, kind).inc(n)

    def observe_shadow(self, agreed: bool, failed: bool = False) -> None:
        """Count one mirrored candidate prediction: failed, or whether it agreed with the
        champion. Agreement rate: ``agreed / (agreed + disagreed)``."""
        outcome = "failed" if failed else "agreed" if agreed else "disagreed"
        self._shadow_children[outcome].inc()


def _statistics(feature: FeatureDrift) -> dict[str, float | None]:
    every = {"ks": feature.ks_statistic, "chi2": feature.chi2_statistic,
             "psi": feature.psi, "js": feature.js_distance}
    return {statistic: every[statistic] for statistic in STATISTICS[feature.kind]}


def _add_runtime_collectors(registry: CollectorRegistry) -> None:
    """This process's CPU, memory and file descriptors (``process_*``), the Python version
    (``python_info``) and the garbage collector (``python_gc_*``). Single-process mode only:
    in multiprocess mode one scrape is answered by any one worker, whose own figures would
    jump from worker to worker, and prometheus_client's GC collector turns itself off
    there; watch the workers from outside (the container's or node's metrics) instead."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


def _status_class(status: int) -> str:
    if not 100 <= status <= 599:
        raise ValueError(f"not an HTTP status code: {status!r}")
    return f"{status // 100}xx"


def _check_storage(directory: str | None) -> None:
    """Refuse a process whose metric storage does not match the environment: the mismatch
    would otherwise lose this process's metrics without a sound."""
    in_files = bool(getattr(values.ValueClass, "_multiprocess", False))
    if directory is not None and not in_files:
        raise RuntimeError(
            f"{MULTIPROC_ENV} is set, but prometheus_client was imported before it was and "
            "keeps metrics in memory, where /metrics of the other workers never sees them: "
            "set the variable before the server process starts")
    if directory is None and in_files:
        raise RuntimeError(f"prometheus_client runs in multiprocess mode, but {MULTIPROC_ENV} "
                           "is no longer set")
    if directory is not None and not os.path.isdir(directory):
        raise RuntimeError(f"{MULTIPROC_ENV}={directory!r} is not a directory")
