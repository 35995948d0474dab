"""Benchmark of driftloop's streaming drift detector, side by side with the usual peers.

What is measured, and why
-------------------------
1. **observe throughput** (feature values per second = rows x 25 / seconds). The detector
   sits in the request path of a model server, so ingesting events must be cheap, both one
   row per call (a dict of scalars, as a request handler would pass) and in batches of 1000
   rows (a dict of numpy arrays, as a log consumer would pass). Pane closes, and so the
   evaluations they trigger, happen inside the timed loop, as they would in production.
   Evidently, alibi-detect and scipy have no streaming API, so this section is ours only.
2. **time per evaluation on a 10k window**: ``DriftDetector.report()`` with 10,000 rows in
   the window, against each peer computing the same kind of report (per-feature KS for
   numeric, chi-square for categorical) over the same 10,000 rows and the same 100,000-row
   reference: Evidently 0.7 (``Report`` + ``DataDriftPreset``), alibi-detect
   (``TabularDrift.predict``, the reference fit being untimed) and a plain scipy recompute
   from raw arrays. Peers recompute from raw samples on every evaluation while driftloop
   keeps slot counts; an extra row times driftloop ingesting the 10k rows *and* reporting,
   for a comparison from raw rows. p-values are checked against scipy's.
3. **false alarms**: the default policy and window on stationary data for 500 evaluations
   (pane closes); counts alarms (``DriftEvent``) and evaluations judged drifted.
4. **detection delay**: events (and panes) from a shift to the first alarm, for one numeric
   feature ("mean texture") shifted by 0.1, 0.25 and 0.5 reference standard deviations and
   for 5 % of rows of one categorical feature taking a category never seen in the
   reference; several seeds per scenario.

Data
----
Real values from scikit-learn's bundled breast-cancer data set (569 rows x 30 columns,
shipped inside the scikit-learn wheel: nothing is downloaded). The numeric features are its
first 20 columns. The 5 categorical features are real values too, discretised: every second
column of the remaining 10 (worst radius, worst perimeter, worst smoothness, worst concavity,
worst symmetry), cut at the quintiles of the reference and labelled "q1".."q5". The
reference is 100,000 rows drawn with replacement from the 569; every stream draws further
rows with replacement from the same 569, so it is stationary unless a scenario shifts it.
All seeds are fixed.

Running it
----------
From the repository root::

    pip install -e '.[bench]'        # driftloop plus the peers: evidently, alibi-detect,
                                     # scikit-learn (the data set)
    python benchmarks/drift_bench.py                 # full run, a few minutes on 2 cores
    python benchmarks/drift_bench.py --quick         # much smaller, a smoke test
    python benchmarks/drift_bench.py --json out.json # also write the raw numbers

A peer that is not installed is reported as skipped; scikit-learn is required.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from sklearn.datasets import load_breast_cancer

import drift_speed
from driftloop.drift import DriftDetector, DriftReport

Columns = dict[str, npt.NDArray[Any]]
Timed = Callable[[], object]

SEED = 20_240_601
N_NUMERIC = 20
QUINTILES = (0.2, 0.4, 0.6, 0.8)
LABELS = np.array(["q1", "q2", "q3", "q4", "q5"])
DELAY_FEATURE = "mean texture"
DELAY_SHIFTS_SD = (0.1, 0.25, 0.5)
NEW_CATEGORY = "NEW"
NEW_SHARE = 0.05

GOAL_VALUES_PER_S = 5e6
GOAL_REPORT_MS = 5.0
GOAL_EVIDENTLY_SPEEDUP = 100.0
GOAL_DELAY_PANES = 2.0


# ---------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Sizes:
    """How much work each section does; ``FULL`` and ``QUICK`` below."""

    reference_rows: int
    row_calls: int  # section 1: one-row observe calls
    batches: int  # section 1: batches per timed pass
    batch_rows: int
    throughput_repeats: int  # section 1: timed passes over the batches
    eval_window: int  # section 2: rows in the evaluated window
    eval_repeats: int  # section 2: timed driftloop reports
    peer_repeats: int  # section 2: timed runs of each slow path (peers, ingest + report)
    warmup: int  # untimed calls before each timed series
    evaluations: int  # section 3: pane closes on stationary data
    delay_seeds: int  # section 4
    delay_batch: int
    delay_cap_panes: int


FULL = Sizes(
    reference_rows=100_000, row_calls=20_000, batches=200, batch_rows=1000,
    throughput_repeats=3, eval_window=10_000, eval_repeats=50, peer_repeats=5, warmup=1,
    evaluations=500, delay_seeds=5, delay_batch=250, delay_cap_panes=20,
)
QUICK = Sizes(
    reference_rows=20_000, row_calls=1_000, batches=20, batch_rows=1000,
    throughput_repeats=1, eval_window=2_000, eval_repeats=10, peer_repeats=1, warmup=0,
    evaluations=40, delay_seeds=2, delay_batch=250, delay_cap_panes=8,
)


# ---------------------------------------------------------------------------- helpers
def time_calls(fn: Timed, repeats: int, warmup: int) -> tuple[list[float], object]:
    """Seconds taken by each of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones,
    and the last call's result."""
    result: object = None
    for _ in range(warmup):
        result = fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def print_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    notes: Sequence[str] = (),
    left: int = 1,
) -> None:
    """An aligned text table: the first ``left`` columns left-aligned, the others right."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    print(f"\n{title}")
    header = line(headers)
    print(header)
    print("-" * len(header))
    for row in rows:
        print(line(row))
    for note in notes:
        print(textwrap.fill(note, width=100, initial_indent="  note: ",
                            subsequent_indent=" " * 8))


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f}"


# ---------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Data:
    """The 569 real rows (20 numeric + 5 discretised columns) and the resampled reference."""

    base: Columns
    numeric: list[str]
    categorical: list[str]
    reference: Columns

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def sample(self, rng: np.random.Generator, rows: int) -> Columns:
        """``rows`` rows drawn with replacement from the real ones."""
        picked = rng.integers(0, len(self.base[self.numeric[0]]), rows)
        return {name: column[picked] for name, column in self.base.items()}

    def stream(self, rng: np.random.Generator, rows: int, batch: int) -> Iterator[Columns]:
        for _ in range(rows // batch):
            yield self.sample(rng, batch)

    def detector(self, **options: Any) -> DriftDetector:
        return DriftDetector.from_reference(self.reference, categorical=self.categorical,
                                            **options)


def load_data(reference_rows: int) -> Data:
    bunch = load_breast_cancer()
    names = [str(name) for name in bunch.feature_names]
    values = np.asarray(bunch.data, dtype=np.float64)
    reference_rows_idx = np.random.default_rng(SEED).integers(0, len(values), reference_rows)
    base: Columns = {name: values[:, j] for j, name in enumerate(names[:N_NUMERIC])}
    categorical = []
    for j in range(N_NUMERIC, len(names), 2):
        edges = np.quantile(values[reference_rows_idx, j], QUINTILES)
        name = f"{names[j]} quintile"
        base[name] = LABELS[np.searchsorted(edges, values[:, j], side="right")]
        categorical.append(name)
    reference = {name: column[reference_rows_idx] for name, column in base.items()}
    return Data(base, names[:N_NUMERIC], categorical, reference)


def as_rows(batch: Columns) -> list[dict[str, Any]]:
    """One dict of plain Python scalars per row, as a request handler would build."""
    columns = {name: column.tolist() for name, column in batch.items()}
    rows = zip(*columns.values(), strict=True)
    return [dict(zip(columns, values, strict=True)) for values in rows]


def feed(det: DriftDetector, items: Sequence[Any]) -> int:
    """Observe every item; the number of alarms raised."""
    return sum(len(det.observe(item)) for item in items)


# ---------------------------------------------------------------------------- 1. observe
def bench_observe(data: Data, sizes: Sizes) -> dict[str, Any]:
    rng = np.random.default_rng(SEED + 1)
    det = data.detector()
    det.observe(data.sample(rng, det.window))  # start from a full window: steady state
    rows = as_rows(data.sample(rng, sizes.row_calls))
    batches = [data.sample(rng, sizes.batch_rows) for _ in range(sizes.batches)]
    width = len(data.features)
    results = {}
    for mode, items, n_rows, repeats, warmup in (
        ("1-row dicts of scalars", rows, len(rows), 1, 0),  # the detector is warm already
        (f"{sizes.batch_rows}-row dicts of arrays", batches, len(batches) * sizes.batch_rows,
         sizes.throughput_repeats, sizes.warmup),
    ):
        seconds, _ = time_calls(partial(feed, det, items), repeats, warmup)
        median = statistics.median(seconds)
        results[mode] = {
            "calls": len(items), "rows": n_rows, "seconds": seconds,
            "values_per_s": n_rows * width / median, "us_per_call": median / len(items) * 1e6,
        }
    return {"window": det.window, "panes": det.panes, "modes": results}


def show_observe(result: dict[str, Any]) -> None:
    rows = [
        [mode, f"{r['calls']:,}", f"{r['rows']:,}", f"{r['us_per_call']:,.1f}",
         f"{r['values_per_s'] / 1e6:,.3f}", f"{len(r['seconds'])}"]
        for mode, r in result["modes"].items()
    ]
    print_table(
        "1. observe throughput — driftloop only (the peers have no streaming API)",
        ["observe(...) input", "calls", "rows", "us/call", "M values/s", "runs"], rows,
        [f"default detector (window {result['window']:,}, {result['panes']} panes), already "
         "full; pane closes and their evaluations are inside the timing",
         f"goal: >= {GOAL_VALUES_PER_S / 1e6:g} M feature values/s for 1000-row batches"],
    )


# ---------------------------------------------------------------------------- 2. evaluation
@dataclass(frozen=True)
class EvalInputs:
    reference: Columns
    current: Columns
    numeric: list[str]
    categorical: list[str]

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


@dataclass(frozen=True)
class Contender:
    """One way of computing a drift report; ``prepare`` does the untimed setup and returns
    the call to time, ``pvalues`` reads per-feature p-values (in ``features`` order) from
    that call's result."""

    name: str
    distribution: str
    tests: str
    prepare: Callable[[EvalInputs], Timed]
    pvalues: Callable[[Any, EvalInputs], npt.NDArray[np.float64]]
    slow: bool
    note: str = ""


def report_pvalues(report: DriftReport, inputs: EvalInputs) -> npt.NDArray[np.float64]:
    return np.array([report.features[name].pvalue for name in inputs.features], dtype=float)


def window_detector(inputs: EvalInputs) -> DriftDetector:
    det = DriftDetector.from_reference(inputs.reference, categorical=inputs.categorical,
                                       window=len(inputs.current[inputs.numeric[0]]))
    det.observe(inputs.current)
    return det


def fresh_windows(inputs: EvalInputs, calls: int = 64) -> Iterator[DriftDetector]:
    """Copies of one detector whose window was never evaluated: ``report()`` on each
    computes every statistic from the counts, as a pane close does (a second ``report()``
    of an unchanged window would reuse them and time only the verdict)."""
    blob = window_detector(inputs).to_bytes()
    copies = [DriftDetector.from_bytes(blob) for _ in range(calls)]
    assert copies[0].report().window_size == copies[0].window
    return iter(copies[1:])


def prepare_driftloop(inputs: EvalInputs) -> Timed:
    copies = fresh_windows(inputs)
    return lambda: next(copies).report()


def report_with_pvalues(det: DriftDetector) -> DriftReport:
    report = det.report()
    for feature in report.features.values():
        _ = feature.pvalue  # every p-value is computed at the evaluation itself
    return report


def prepare_driftloop_pvalues(inputs: EvalInputs) -> Timed:
    copies = fresh_windows(inputs)
    return lambda: report_with_pvalues(next(copies))


def ingest_and_report(det: DriftDetector, current: Columns) -> DriftReport:
    det.observe(current)  # the window's size: every pane is replaced by the new rows
    return det.report()


def prepare_driftloop_ingest(inputs: EvalInputs) -> Timed:
    return partial(ingest_and_report, window_detector(inputs), inputs.current)


def prepare_evidently(inputs: EvalInputs) -> Timed:
    # Peers are imported where used, so that a missing one only skips its row.
    from evidently import DataDefinition, Dataset, Report  # noqa: PLC0415
    from evidently.presets import DataDriftPreset  # noqa: PLC0415

    definition = DataDefinition(numerical_columns=inputs.numeric,
                                categorical_columns=inputs.categorical)
    reference = Dataset.from_pandas(pd.DataFrame(inputs.reference), data_definition=definition)
    current = pd.DataFrame(inputs.current)
    report = Report([DataDriftPreset(num_method="ks", cat_method="chisquare")])

    def run() -> object:
        return report.run(Dataset.from_pandas(current, data_definition=definition), reference)

    return run


def evidently_pvalues(snapshot: Any, inputs: EvalInputs) -> npt.NDArray[np.float64]:
    found = {
        metric["config"]["column"]: metric["value"]
        for metric in snapshot.dict()["metrics"]
        if metric["config"].get("type", "").endswith(":ValueDrift")
    }
    return np.array([found[name] for name in inputs.features], dtype=float)


def as_matrix(columns: Columns, inputs: EvalInputs) -> npt.NDArray[np.float64]:
    """Numeric columns as they are, categorical ones as the index of their label among the
    reference's sorted labels (alibi-detect needs one numeric matrix)."""
    parts = [columns[name] for name in inputs.numeric]
    for name in inputs.categorical:
        labels = np.unique(inputs.reference[name])
        parts.append(np.searchsorted(labels, columns[name]))
    return np.column_stack(parts).astype(np.float64)


def prepare_alibi(inputs: EvalInputs) -> Timed:
    # alibi-detect imports transformers, which advises at import that torch is missing.
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from alibi_detect.cd import TabularDrift  # noqa: PLC0415

    first = len(inputs.numeric)
    categories = {first + k: int(np.unique(inputs.reference[name]).size)
                  for k, name in enumerate(inputs.categorical)}
    detector = TabularDrift(as_matrix(inputs.reference, inputs), p_val=0.05,
                            categories_per_feature=categories)
    return partial(detector.predict, as_matrix(inputs.current, inputs))


def alibi_pvalues(prediction: Any, inputs: EvalInputs) -> npt.NDArray[np.float64]:
    return np.asarray(prediction["data"]["p_val"], dtype=float)


def contingency(reference: npt.NDArray[Any], current: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The 2 x k table of label counts over the labels present in either sample."""
    _, inverse = np.unique(np.concatenate([reference, current]), return_inverse=True)
    k = int(inverse.max()) + 1
    return np.vstack([np.bincount(inverse[: reference.size], minlength=k),
                      np.bincount(inverse[reference.size :], minlength=k)])


def scipy_recompute(inputs: EvalInputs) -> npt.NDArray[np.float64]:
    ref, cur = inputs.reference, inputs.current
    pvalues = [stats.ks_2samp(ref[name], cur[name], method="asymp").pvalue
               for name in inputs.numeric]
    pvalues += [stats.chi2_contingency(contingency(ref[name], cur[name]), correction=False).pvalue
                for name in inputs.categorical]
    return np.array(pvalues, dtype=float)


def prepare_scipy(inputs: EvalInputs) -> Timed:
    return partial(scipy_recompute, inputs)


def identity_pvalues(pvalues: Any, inputs: EvalInputs) -> npt.NDArray[np.float64]:
    return np.asarray(pvalues, dtype=float)


CONTENDERS = [
    Contender("driftloop report()", "driftloop", "KS asymp + chi2 homogeneity, from counts",
              prepare_driftloop, report_pvalues, slow=False),
    Contender("driftloop report() + p-values", "driftloop", "same, every p-value read",
              prepare_driftloop_pvalues, report_pvalues, slow=False,
              note="'+ p-values': report() then .pvalue of every feature, as the peers return "
                   "every p-value (a no-op where report() computes them all already)"),
    Contender("driftloop observe(window)+report()", "driftloop", "same, plus ingesting rows",
              prepare_driftloop_ingest, report_pvalues, slow=True,
              note="'observe(window)+report()': observe() of the window's rows, then report(): "
                   "a comparison from raw rows (includes 2 extra pane-close evaluations)"),
    Contender("Evidently Report.run", "evidently", "ks + chisquare (goodness of fit)",
              prepare_evidently, evidently_pvalues, slow=True,
              note="Evidently: DataDriftPreset(num_method='ks', cat_method='chisquare'); timed: "
                   "Dataset.from_pandas(current) + Report.run(current, reference Dataset built "
                   "once, untimed). Its 'chisquare' is scipy.stats.chisquare of current counts "
                   "against reference proportions, not a 2 x k homogeneity test, so its "
                   "categorical p-values differ. Report.run always builds the plotly widgets."),
    Contender("alibi-detect TabularDrift.predict", "alibi-detect",
              "KS asymp + chi2_contingency", prepare_alibi, alibi_pvalues, slow=True,
              note="alibi-detect: TabularDrift(x_ref, p_val=0.05, categories_per_feature={col: "
                   "5}) fitted untimed; timed: predict(x) on a float matrix with categories "
                   "coded 0..4 (coding untimed); p-values are float32"),
    Contender("scipy recompute", "scipy", "ks_2samp asymp + chi2_contingency",
              prepare_scipy, identity_pvalues, slow=True,
              note="scipy: per-feature ks_2samp(method='asymp') and chi2_contingency of label "
                   "counts, recomputed from the raw reference and window arrays on each call"),
]


def bench_evaluation(data: Data, sizes: Sizes) -> dict[str, Any]:
    rng = np.random.default_rng(SEED + 2)
    inputs = EvalInputs(data.reference, data.sample(rng, sizes.eval_window), data.numeric,
                        data.categorical)
    truth = scipy_recompute(inputs)
    results: dict[str, Any] = {}
    for contender in CONTENDERS:
        try:
            timed = contender.prepare(inputs)
        except ImportError as exc:
            results[contender.name] = {"skipped": f"{contender.distribution} not installed "
                                                  f"({exc.name})"}
            continue
        repeats = sizes.peer_repeats if contender.slow else sizes.eval_repeats
        seconds, last = time_calls(timed, repeats, sizes.warmup)
        pvalues = contender.pvalues(last, inputs)
        results[contender.name] = {
            "seconds": seconds,
            "median_s": statistics.median(seconds),
            "max_abs_dp_vs_scipy": float(np.max(np.abs(pvalues - truth))),
        }
    return {"window": sizes.eval_window, "reference": sizes.reference_rows, "results": results}


def show_evaluation(result: dict[str, Any]) -> None:
    ours = result["results"]["driftloop report()"]["median_s"]
    rows = []
    notes = []
    for contender in CONTENDERS:
        r = result["results"][contender.name]
        if "skipped" in r:
            rows.append([contender.name, contender.tests, "skipped", "", "", "", ""])
            notes.append(f"{contender.name}: {r['skipped']}")
            continue
        rows.append([contender.name, contender.tests, ms(r["median_s"]), ms(min(r["seconds"])),
                     str(len(r["seconds"])), f"{r['median_s'] / ours:,.1f}x",
                     f"{r['max_abs_dp_vs_scipy']:.1e}"])
        if contender.note:
            notes.append(contender.note)
    notes.append(f"goals: driftloop report() <= {GOAL_REPORT_MS:g} ms; Evidently / driftloop "
                 f">= {GOAL_EVIDENTLY_SPEEDUP:g}x")
    print_table(
        f"2. time per evaluation — {result['window']:,}-row window vs "
        f"{result['reference']:,}-row reference, 20 numeric + 5 categorical",
        ["tool", "tests", "median ms", "min ms", "runs", "vs ours", "max |dp| vs scipy"],
        rows, notes, left=2,
    )


# ------------------------------------------------------- 2b. evaluation cost vs distinct values
def jittered(columns: Columns, numeric: list[str], rng: np.random.Generator) -> Columns:
    """Numeric columns nudged by 1e-6 sd so that (almost) every value is distinct."""
    return {name: column + rng.normal(0.0, 1e-6 * column.std(), column.size)
            if name in numeric else column for name, column in columns.items()}


def bench_distinct(data: Data, sizes: Sizes) -> dict[str, Any]:
    """report() on the real values (≤ 569 distinct per feature) and on a continuous variant
    of the same data (every reference value distinct): the worst case for the slot counts,
    whose report cost grows with the distinct values the window touches."""
    rng = np.random.default_rng(SEED + 5)
    current = data.sample(rng, sizes.eval_window)
    variants = {"real values": (data.reference, current),
                "continuous (jittered)": (jittered(data.reference, data.numeric, rng),
                                          jittered(current, data.numeric, rng))}
    results: dict[str, Any] = {}
    for label, (reference, window) in variants.items():
        inputs = EvalInputs(reference, window, data.numeric, data.categorical)
        seconds, _ = time_calls(prepare_driftloop(inputs), sizes.eval_repeats, sizes.warmup)
        distinct = int(np.median([np.unique(reference[n]).size for n in data.numeric]))
        results[label] = {"seconds": seconds, "median_s": statistics.median(seconds),
                          "distinct": distinct}
    return results


def show_distinct(result: dict[str, Any]) -> None:
    rows = [[label, f"{r['distinct']:,}", ms(r["median_s"]), ms(min(r["seconds"]))]
            for label, r in result.items()]
    print_table("2b. driftloop report() cost against the reference's distinct values "
                "(10k window)", ["reference", "distinct values / feature", "median ms",
                                 "min ms"], rows)


# ---------------------------------------------------------------------------- 3. false alarms
def bench_false_alarms(data: Data, sizes: Sizes) -> dict[str, Any]:
    rng = np.random.default_rng(SEED + 3)
    det = data.detector()
    alarms = drifted = significant = evaluations = 0
    start = time.perf_counter()
    for batch in data.stream(rng, sizes.evaluations * det.pane_size, det.pane_size):
        alarms += len(det.observe(batch))  # a pane's worth of rows: exactly one pane close
        report = det.last_report
        assert report is not None and report.pane_id == evaluations
        evaluations += 1
        drifted += report.drifted
        significant += any(f.significant for f in report.features.values())
    return {
        "window": det.window, "panes": det.panes, "policy": det.policy.to_dict(),
        "evaluations": evaluations, "rows": det.events_seen, "alarms": alarms,
        "drifted_evaluations": drifted, "significant_evaluations": significant,
        "seconds": time.perf_counter() - start,
    }


def show_false_alarms(result: dict[str, Any]) -> None:
    policy = result["policy"]
    rows = [[f"{result['evaluations']:,}", f"{result['rows']:,}",
             str(result["significant_evaluations"]), str(result["drifted_evaluations"]),
             str(result["alarms"]), f"{result['seconds']:.1f}"]]
    print_table(
        "3. false alarms — stationary stream, default policy and window (driftloop only)",
        ["evaluations", "rows", "any test significant", "drifted", "alarms", "seconds"], rows,
        [f"window {result['window']:,} in {result['panes']} panes; alpha {policy['alpha']} "
         f"({policy['correction']}), effect {policy['effect']} >= {policy['effect_floor']}, "
         f"{policy['consecutive']} consecutive drifted evaluations per alarm",
         "'any test significant': evaluations where a corrected p-value passed but the "
         "effect floor may have held it back", "goal: 0 alarms"],
    )


# ---------------------------------------------------------------------------- 4. delay
Shift = Callable[[Columns, np.random.Generator], Columns]


@dataclass(frozen=True)
class Scenario:
    name: str
    shift: Shift


def shift_numeric(batch: Columns, rng: np.random.Generator, feature: str,
                  delta: float) -> Columns:
    return {**batch, feature: batch[feature] + delta}


def inject_category(batch: Columns, rng: np.random.Generator, feature: str,
                    share: float) -> Columns:
    hit = rng.random(batch[feature].size) < share
    return {**batch, feature: np.where(hit, NEW_CATEGORY, batch[feature])}


def scenarios(data: Data) -> list[Scenario]:
    sd = float(np.std(data.reference[DELAY_FEATURE]))
    out = [Scenario(f"{DELAY_FEATURE} +{k:g} sd",
                    partial(shift_numeric, feature=DELAY_FEATURE, delta=k * sd))
           for k in DELAY_SHIFTS_SD]
    target = data.categorical[0]
    out.append(Scenario(f"{target}: {NEW_SHARE:.0%} '{NEW_CATEGORY}'",
                        partial(inject_category, feature=target, share=NEW_SHARE)))
    return out


@dataclass(frozen=True)
class DelayRun:
    seed: int
    delay_events: int | None  # None: no alarm before the cap
    pre_shift_alarms: int


def detection_delay(data: Data, scenario: Scenario, seed: int, sizes: Sizes) -> DelayRun:
    rng = np.random.default_rng(seed)
    det = data.detector()
    before = feed(det, list(data.stream(rng, 2 * det.window, sizes.delay_batch)))
    shifted_at = det.events_seen
    cap = shifted_at + sizes.delay_cap_panes * det.pane_size
    while det.events_seen < cap:
        alarms = det.observe(scenario.shift(data.sample(rng, sizes.delay_batch), rng))
        if alarms:
            return DelayRun(seed, alarms[0].events_seen - shifted_at, before)
    return DelayRun(seed, None, before)


def bench_delay(data: Data, sizes: Sizes) -> dict[str, Any]:
    pane_size = data.detector().pane_size
    results = {}
    for scenario in scenarios(data):
        runs = [detection_delay(data, scenario, SEED + 100 + s, sizes)
                for s in range(sizes.delay_seeds)]
        delays = [math.inf if r.delay_events is None else r.delay_events for r in runs]
        results[scenario.name] = {
            "runs": [asdict(r) for r in runs],
            "detected": sum(r.delay_events is not None for r in runs),
            "median_events": statistics.median(delays),
            "max_events": max(delays),
            "pre_shift_alarms": sum(r.pre_shift_alarms for r in runs),
        }
    return {"pane_size": pane_size, "cap_panes": sizes.delay_cap_panes,
            "batch": sizes.delay_batch, "seeds": sizes.delay_seeds, "scenarios": results}


def delay_cells(events: float, pane_size: int, cap_panes: int) -> list[str]:
    if math.isinf(events):
        return ["miss", f"> {cap_panes}"]
    return [f"{events:,.0f}", f"{events / pane_size:.2f}"]


def show_delay(result: dict[str, Any]) -> None:
    pane, cap = result["pane_size"], result["cap_panes"]
    rows = [
        [name, f"{r['detected']}/{len(r['runs'])}",
         *delay_cells(r["median_events"], pane, cap), *delay_cells(r["max_events"], pane, cap),
         str(r["pre_shift_alarms"])]
        for name, r in result["scenarios"].items()
    ]
    print_table(
        "4. detection delay — events from the shift to the first alarm (driftloop only)",
        ["scenario", "alarmed", "median events", "median panes", "max events", "max panes",
         "alarms before shift"], rows,
        [f"default policy and window (panes of {pane:,}); window filled with 2 windows of "
         f"stationary rows, then shifted rows in batches of {result['batch']}, until the "
         f"first alarm or {cap} panes; {result['seeds']} seeds; 'miss' = no alarm by the cap",
         f"goal: a 0.25 sd shift alarms within {GOAL_DELAY_PANES:g} panes (max over seeds)"],
    )


# ---------------------------------------------------------------------------- goals
@dataclass(frozen=True)
class Goal:
    name: str
    target: str
    measured: str
    status: str  # PASS, FAIL or SKIP


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def goals(observe: dict[str, Any], evaluation: dict[str, Any], false_alarms: dict[str, Any],
          delay: dict[str, Any]) -> list[Goal]:
    batch_mode = next(r for mode, r in observe["modes"].items() if "arrays" in mode)
    rate = batch_mode["values_per_s"]
    timings = evaluation["results"]
    ours = timings["driftloop report()"]["median_s"]
    evidently = timings["Evidently Report.run"]
    quarter = delay["scenarios"][f"{DELAY_FEATURE} +0.25 sd"]
    quarter_panes = quarter["max_events"] / delay["pane_size"]
    out = [
        Goal("observe, 1000-row batches", f">= {GOAL_VALUES_PER_S / 1e6:g} M values/s",
             f"{rate / 1e6:.2f} M values/s", verdict(rate >= GOAL_VALUES_PER_S)),
        Goal("report() on the evaluation window", f"<= {GOAL_REPORT_MS:g} ms", f"{ms(ours)} ms",
             verdict(ours * 1e3 <= GOAL_REPORT_MS)),
    ]
    if "skipped" in evidently:
        out.append(Goal("speed-up over Evidently", f">= {GOAL_EVIDENTLY_SPEEDUP:g}x",
                        "Evidently not installed", "SKIP"))
    else:
        speedup = evidently["median_s"] / ours
        out.append(Goal("speed-up over Evidently", f">= {GOAL_EVIDENTLY_SPEEDUP:g}x",
                        f"{speedup:,.0f}x", verdict(speedup >= GOAL_EVIDENTLY_SPEEDUP)))
    out += [
        Goal(f"false alarms in {false_alarms['evaluations']} stationary evaluations", "0",
             str(false_alarms["alarms"]), verdict(false_alarms["alarms"] == 0)),
        Goal("0.25 sd shift: panes to alarm (max)", f"<= {GOAL_DELAY_PANES:g}",
             "miss" if math.isinf(quarter_panes) else f"{quarter_panes:.2f}",
             verdict(quarter_panes <= GOAL_DELAY_PANES)),
    ]
    return out


def show_goals(found: list[Goal]) -> None:
    print_table("goals", ["goal", "target", "measured", "result"],
                [[g.name, g.target, g.measured, g.status] for g in found], left=2)


# ---------------------------------------------------------------------------- main
def machine_facts() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "platform": f"{platform.system()} {platform.machine()}",
        "versions": {d: version_of(d) for d in ("driftloop", "scipy", "pandas", "scikit-learn",
                                                 "evidently", "alibi-detect")},
    }


def show_header(facts: dict[str, Any], data: Data, quick: bool) -> None:
    versions = ", ".join(f"{name} {v}" for name, v in facts["versions"].items())
    print(f"driftloop drift benchmark ({'quick' if quick else 'full'} run)")
    print(f"machine: Python {facts['python']}, numpy {facts['numpy']}, "
          f"{facts['cpu_count']} CPUs, {facts['platform']}")
    print(f"versions: {versions}")
    print(f"data: scikit-learn breast cancer (569 real rows) -> {len(data.numeric)} numeric + "
          f"{len(data.categorical)} quintile-labelled features; reference "
          f"{len(data.reference[data.numeric[0]]):,} rows resampled (seed {SEED})")


def to_json(value: Any) -> Any:
    """``value`` with infinities as None, so the file is strict JSON."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a much smaller smoke-test run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the raw numbers here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()

    data = load_data(sizes.reference_rows)
    facts = machine_facts()
    show_header(facts, data, args.quick)
    observe = bench_observe(data, sizes)
    show_observe(observe)
    evaluation = bench_evaluation(data, sizes)
    show_evaluation(evaluation)
    distinct = bench_distinct(data, sizes)
    show_distinct(distinct)
    false_alarms = bench_false_alarms(data, sizes)
    show_false_alarms(false_alarms)
    delay = bench_delay(data, sizes)
    show_delay(delay)
    found = goals(observe, evaluation, false_alarms, delay)
    show_goals(found)
    drift_speed.run_all(args.quick)  # issue 14: real mixed data, every figure with its peer
    elapsed = time.perf_counter() - started
    print(f"\ntotal {elapsed:.0f} s")

    if args.json is not None:
        raw = {
            "machine": facts, "quick": args.quick, "sizes": asdict(sizes), "seed": SEED,
            "observe": observe, "evaluation": evaluation, "distinct": distinct,
            "false_alarms": false_alarms,
            "delay": delay, "goals": [asdict(g) for g in found], "seconds": elapsed,
        }
        args.json.write_text(json.dumps(to_json(raw), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
