"""Speed and memory of driftloop's drift core on real mixed data, each figure beside its peer.

What is measured (every ratio comes from the same run, peers timed next to driftloop)
------------------------------------------------------------------------------------
1. **observe**: feature values per second for 1,000-row batches and microseconds per
   feature for one-row dicts, against the floor of merely converting the same batch to
   numpy (``Series.to_numpy`` / ``ChunkedArray.to_numpy`` per column). Pane closes, and
   so the evaluations they trigger, happen inside the timed loop (default window).
2. **every statistic of one evaluation**: ``report()`` and reading every feature's KS D
   and p, PSI, JS, chi-square p, missing share and verdict, for 25 features x 100k
   continuous reference values and a 10k window, against scipy recomputing the same from
   the raw windows (``ks_2samp(method="asymp")`` and ``np.histogram`` for PSI/JS).
3. **building the detector**: ``DriftDetector.from_reference`` on the mixed reference
   (pandas and Arrow), against pandas ``value_counts`` / Arrow ``value_counts`` on the
   same columns.
4. **memory**: bytes of RAM (tracemalloc, after the build) and serialized per distinct
   reference value on a 1e6-row continuous reference, and the bytes a worker ships per
   pane (``window_bytes``) for 25 features and a 10k / 100k window.
5. **drift-report** on two 1e6 x 10 Parquet files (8 continuous, 2 string columns), each
   tool in a fresh process (best CPU time of three, largest peak RSS of the three),
   against Evidently's drift preset with KS and chi-square (run by ``.venv-bench`` when
   this interpreter lacks evidently).

Times are CPU seconds of the process (``time.process_time``), best of a few runs: on a
shared machine waiting for a core is not the code's cost. The load average is printed
before and after.

Data
----
Real values from the data sets that ship inside river's wheel (nothing is downloaded):
*solar flare* (1,066 sunspot groups: Zurich class, spot size and distribution are
letters) and *image segment* (2,310 regions: 18 continuous measurements and a class
label). The mixed table has 16 features: 4 pandas ``category`` columns, 2 object-string
columns, 1 nullable ``Int64`` (1 % set to NA, the only synthetic touch), 3 integer and 6
float columns; rows are drawn with replacement from each data set. The numeric-only
table is the 18 segment measurements. Section 2 needs 100k *distinct* values per feature,
which no bundled set has: it draws them from 25 lognormal/normal mixtures (seeded).

Run ``python benchmarks/drift_speed.py`` (``--quick`` for a smoke test); it is also
section 5 of ``benchmarks/drift_bench.py``. ``--old SRC`` (another checkout's ``src/``)
runs sections 1, 2 and 5 for that tree and this one, ``--rounds`` times alternately, each
in a fresh process, and prints the medians side by side: on a shared machine only
interleaved runs of both trees compare.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import river.datasets
from scipy import stats

from driftloop.drift import DriftDetector, DriftReport

SEED = 14
DATASETS = Path(river.datasets.__file__).parent


# ---------------------------------------------------------------------------- data
def _zipped_csv(name: str) -> pd.DataFrame:
    with zipfile.ZipFile(DATASETS / name) as archive, \
            archive.open(archive.namelist()[0]) as handle:
        return pd.read_csv(handle)


def mixed_table(rows: int, seed: int) -> pd.DataFrame:
    """``rows`` rows of the 16-feature mixed table (see the module docstring)."""
    rng = np.random.default_rng(seed)
    flare = _zipped_csv("solar-flare.csv.zip")
    segment = _zipped_csv("segment.csv.zip")
    f = flare.iloc[rng.integers(0, len(flare), rows)].reset_index(drop=True)
    s = segment.iloc[rng.integers(0, len(segment), rows)].reset_index(drop=True)
    activity = pd.array(f["activity"].to_numpy(), dtype="Int64")
    activity[rng.random(rows) < 0.01] = pd.NA
    return pd.DataFrame({
        "zurich_class": pd.Categorical(f["zurich-class"]),
        "spot_size": pd.Categorical(f["largest-spot-size"]),
        "segment_class": pd.Categorical(s["category"]),
        "evolution": pd.Categorical(f["evolution"].astype(str)),
        "spot_distribution": f["spot-distribution"].astype(object),
        "hist_complex": f["hist-complex"].map({1: "yes", 2: "no"}).astype(object),
        "activity": activity,
        "area": f["area"].astype(np.int64),
        "centroid_col": s["region-centroid-col"].astype(np.int64),
        "centroid_row": s["region-centroid-row"].astype(np.int64),
        "intensity": s["intensity-mean"],
        "raw_red": s["rawred-mean"],
        "ex_green": s["exgreen-mean"],
        "saturation": s["saturation-mean"],
        "hue": s["hue-mean"],
        "vedge_sd": s["vegde-sd"],
    })


def numeric_table(rows: int, seed: int) -> pd.DataFrame:
    """The 18 continuous segment measurements, ``rows`` rows drawn with replacement."""
    rng = np.random.default_rng(seed)
    segment = _zipped_csv("segment.csv.zip").drop(columns=["category"]).astype(np.float64)
    return segment.iloc[rng.integers(0, len(segment), rows)].reset_index(drop=True)


def continuous_columns(features: int, rows: int, seed: int) -> dict[str, np.ndarray]:
    """``features`` columns of ``rows`` distinct-valued draws (normal / lognormal mixes)."""
    rng = np.random.default_rng(seed)
    out = {}
    for k in range(features):
        base = rng.normal(k, 1 + k % 3, rows)
        out[f"x{k:02d}"] = np.exp(base / 4) if k % 2 else base
    return out


# ---------------------------------------------------------------------------- timing
def best_of(fn: Callable[[], object], repeats: int) -> float:
    """The least CPU time (all of this process's threads) of ``repeats`` calls, after one
    untimed call: on a shared machine, waiting for a core is not the code's cost, and
    other load only ever adds time."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def show(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(headers, widths, strict=True)))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))


# ---------------------------------------------------------------------------- 1. observe
def _conversion_floor(batch: Any) -> None:
    if isinstance(batch, pa.Table):
        for column in batch.columns:
            column.to_numpy()
        return
    for name in batch.columns:
        batch[name].to_numpy()


def bench_observe(quick: bool) -> list[list[str]]:
    reference_rows = 20_000 if quick else 70_000
    batches = 10 if quick else 60
    mixed_ref = mixed_table(reference_rows, SEED)
    mixed_live = mixed_table(batches * 1000, SEED + 1)
    numeric_ref = numeric_table(reference_rows, SEED)
    numeric_live = numeric_table(batches * 1000, SEED + 1)
    cases: list[tuple[str, pd.DataFrame, list[Any]]] = [
        ("mixed, DataFrame", mixed_ref,
         [mixed_live.iloc[i : i + 1000] for i in range(0, len(mixed_live), 1000)]),
        ("mixed, Arrow table", mixed_ref,
         [pa.Table.from_pandas(mixed_live.iloc[i : i + 1000], preserve_index=False)
          for i in range(0, len(mixed_live), 1000)]),
        ("numeric, DataFrame", numeric_ref,
         [numeric_live.iloc[i : i + 1000] for i in range(0, len(numeric_live), 1000)]),
        ("numeric, dict of numpy", numeric_ref,
         [{c: numeric_live[c].to_numpy()[i : i + 1000] for c in numeric_live.columns}
          for i in range(0, len(numeric_live), 1000)]),
    ]
    rows = []
    for label, reference, items in cases:
        det = DriftDetector.from_reference(reference)
        values = sum(1000 * len(reference.columns) for _ in items)

        def run(det: DriftDetector = det, items: list[Any] = items) -> None:
            for item in items:
                det.observe(item)

        seconds = best_of(run, 2 if quick else 3)
        floor_items = [pd.DataFrame(i) if isinstance(i, dict) else i for i in items]
        floor = best_of(lambda fi=floor_items: [_conversion_floor(b) for b in fi],
                        2 if quick else 3)
        rows.append([label, f"{values / seconds / 1e6:.2f} M/s",
                     f"{values / floor / 1e6:.2f} M/s", f"{seconds / floor:.1f}x"])
    one_row = mixed_live.head(2000 if quick else 20_000).to_dict("records")
    det = DriftDetector.from_reference(mixed_ref)
    seconds = best_of(lambda: [det.observe(r) for r in one_row], 2)
    per_feature = seconds / len(one_row) / len(mixed_ref.columns)
    rows.append(["mixed, one-row dicts", f"{per_feature * 1e6:.2f} us/feature", "", ""])
    show("1. observe(): feature values per second (1,000-row batches)",
         ["input", "driftloop", "to_numpy floor", "driftloop / floor"], rows)
    return rows


# ---------------------------------------------------------------------------- 2. evaluation
def read_everything(report: DriftReport) -> list[Any]:
    """Every statistic a dashboard reads from one evaluation."""
    return [(f.ks_statistic, f.ks_pvalue, f.psi, f.js_distance, f.chi2_pvalue,
             f.missing_share, f.drifted) for f in report.features.values()]


def scipy_recompute(reference: dict[str, np.ndarray], window: dict[str, np.ndarray],
                    edges: dict[str, np.ndarray]) -> list[Any]:
    out = []
    for name, ref in reference.items():
        cur = window[name]
        result = stats.ks_2samp(ref, cur, method="asymp")
        r = np.histogram(ref, edges[name])[0] / ref.size
        c = np.histogram(cur, edges[name])[0] / cur.size
        r, c = np.maximum(r, 1e-4), np.maximum(c, 1e-4)
        out.append((result.statistic, result.pvalue, float(((c - r) * np.log(c / r)).sum())))
    return out


def bench_evaluation(quick: bool) -> list[list[str]]:
    features, ref_rows, window = (25, 20_000, 2_000) if quick else (25, 100_000, 10_000)
    reference = continuous_columns(features, ref_rows, SEED)
    rng = np.random.default_rng(SEED + 2)
    live = {k: rng.choice(v, window) + rng.normal(0, v.std() / 50, window) * (i % 5 == 0)
            for i, (k, v) in enumerate(reference.items())}
    det = DriftDetector.from_reference(reference, window=window, panes=2)
    det.observe(live)
    # Identical detectors whose windows were never evaluated: each first report() computes
    # every statistic from the window's counts, as a pane close does.
    blob = det.to_bytes()
    fresh = [DriftDetector.from_bytes(blob) for _ in range(3 if quick else 8)]
    cold = float("inf")
    for copy in fresh:
        start = time.process_time()
        read_everything(copy.report())
        cold = min(cold, time.process_time() - start)
    warm = best_of(lambda: read_everything(det.report()), 5 if quick else 20)
    edges = {k: np.quantile(v, np.linspace(0, 1, 11)) for k, v in reference.items()}
    peer = best_of(lambda: scipy_recompute(reference, live, edges), 1 if quick else 2)
    check = scipy_recompute(reference, live, edges)
    report = det.report()
    worst = max(abs(f.ks_pvalue - p) for f, (_, p, _) in  # type: ignore[operator]
                zip(report.features.values(), check, strict=True))
    case = f"{features} x {ref_rows:,} continuous, {window:,} window"
    rows = [[f"{case}: evaluation from counts", f"{cold * 1e3:.2f} ms", f"{peer * 1e3:.1f} ms",
             f"{peer / cold:.0f}x", f"{worst:.1e}"],
            [f"{case}: a read between pane closes", f"{warm * 1e3:.2f} ms",
             f"{peer * 1e3:.1f} ms", f"{peer / warm:.0f}x", ""]]
    show("2. every statistic of one evaluation (report() + reading KS D/p, PSI, JS, ...)",
         ["case", "driftloop", "scipy recompute", "speed-up", "max |p - scipy p|"], rows)
    return rows


# ---------------------------------------------------------------------------- 3. build
def bench_build(quick: bool) -> list[list[str]]:
    rows_n = 20_000 if quick else 70_000
    frame = mixed_table(rows_n, SEED)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    repeats = 2 if quick else 5
    ours_pd = best_of(lambda: DriftDetector.from_reference(frame), repeats)
    peer_pd = best_of(lambda: [frame[c].value_counts() for c in frame.columns], repeats)
    ours_pa = best_of(lambda: DriftDetector.from_reference(table), repeats)
    peer_pa = best_of(lambda: [pc.value_counts(c) for c in table.columns], repeats)
    rows = [
        [f"pandas DataFrame, {rows_n:,} x 16", f"{ours_pd * 1e3:.1f} ms",
         f"{peer_pd * 1e3:.1f} ms (value_counts)", f"{ours_pd / peer_pd:.1f}x"],
        [f"Arrow table, {rows_n:,} x 16", f"{ours_pa * 1e3:.1f} ms",
         f"{peer_pa * 1e3:.1f} ms (pc.value_counts)", f"{ours_pa / peer_pa:.1f}x"],
    ]
    show("3. building the detector on the mixed reference",
         ["input", "from_reference", "peer on the same columns", "driftloop / peer"], rows)
    return rows


# ---------------------------------------------------------------------------- 4. memory
def bench_memory(quick: bool) -> list[list[str]]:
    rows_n, features = (200_000, 5) if quick else (1_000_000, 5)
    reference = continuous_columns(features, rows_n, SEED)
    distinct = sum(np.unique(v).size for v in reference.values())
    gc.collect()
    tracemalloc.start()
    det = DriftDetector.from_reference(reference)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    blob = det.to_bytes()
    rows = [[f"{features} x {rows_n:,} continuous ({distinct:,} distinct)",
             f"{held / distinct:.1f} B", f"{peak / distinct:.1f} B",
             f"{len(blob) / distinct:.1f} B"]]
    show("4a. memory per distinct reference value",
         ["reference", "RAM held", "RAM peak (build)", "to_bytes()"], rows)
    ship = []
    reference = continuous_columns(25, 20_000 if quick else 100_000, SEED)
    for window in (10_000, 100_000):
        det = DriftDetector.from_reference(reference, window=window, panes=10)
        rng = np.random.default_rng(SEED)
        live = {k: rng.choice(v, window) for k, v in reference.items()}
        det.observe(live)
        ship.append([f"25 features, {window:,} window in 10 panes",
                     f"{len(det.window_bytes()) / 1e6:.2f} MB",
                     f"{len(det.window_bytes()) / (25 * window):.1f} B"])
    show("4b. what a worker ships per pane (window_bytes of a full window)",
         ["window", "bytes", "per feature value"], ship)
    return rows + ship


# ---------------------------------------------------------------------------- 5. drift-report
# Peak RSS of the job's own memory (VmHWM, kB). Not getrusage's ru_maxrss: a child
# started from this process keeps the parent's high-water mark across exec, which added
# ~300 MB (this process's size after building the files) to both tools' figures.
_PEAK = """
def _peak_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
"""

_DRIFTLOOP_JOB = _PEAK + """
import sys, time
from driftloop.tables import batch_report_files as batch_report
start = time.process_time()
report = batch_report(sys.argv[1], sys.argv[2])
read = [(f.ks_pvalue, f.chi2_pvalue, f.psi) for f in report.features.values()]
print(time.process_time() - start, _peak_kb())
"""

_EVIDENTLY_JOB = _PEAK + """
import sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
start = time.process_time()
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
definition = DataDefinition(
    numerical_columns=[c for c in ref.columns if ref[c].dtype.kind == "f"],
    categorical_columns=[c for c in ref.columns if ref[c].dtype.kind != "f"])
report = Report([DataDriftPreset(num_method="ks", cat_method="chisquare")])
snapshot = report.run(Dataset.from_pandas(cur, data_definition=definition),
                      Dataset.from_pandas(ref, data_definition=definition))
snapshot.dict()
print(time.process_time() - start, _peak_kb())
"""


#: Fresh processes per tool in section 5. One run of either tool moves by up to a factor
#: of two (page faults of a fresh process's first-touch memory: 1.2 to 2.5 s seen for
#: driftloop in one session), so each tool gets its best of a few, as every other time here.
REPORT_RUNS = 3


def _child(python: str, job: str, *files: str) -> tuple[float, float] | None:
    """Least CPU seconds and largest peak RSS (MB) of ``job`` run by ``python``, each run
    in a fresh process (:data:`REPORT_RUNS` of them)."""
    import subprocess  # noqa: PLC0415

    cpus, peaks = [], []
    for _ in range(REPORT_RUNS):
        done = subprocess.run([python, "-c", job, *files], capture_output=True, text=True,
                              check=False)
        if done.returncode:
            print(f"  ({Path(python).name} failed: {done.stderr.strip().splitlines()[-1:]})")
            return None
        cpu, rss_kb = done.stdout.split()[-2:]
        cpus.append(float(cpu))
        peaks.append(float(rss_kb) / 1024)
    return min(cpus), max(peaks)


def bench_drift_report(quick: bool, evidently_python: str | None) -> list[list[str]]:
    """``drift-report``'s work (read both Parquet files, build, observe, read every
    statistic) on rows x 10 columns, against Evidently's KS / chi-square drift preset."""
    import tempfile  # noqa: PLC0415

    import pyarrow.parquet as pq  # noqa: PLC0415

    rows_n = 100_000 if quick else 1_000_000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for seed in (SEED, SEED + 1):
            columns = continuous_columns(8, rows_n, seed)
            flare = mixed_table(rows_n, seed)
            columns["zurich_class"] = flare["zurich_class"].astype(str).to_numpy()
            columns["spot_size"] = flare["spot_size"].astype(str).to_numpy()
            path = f"{tmp}/{seed}.parquet"
            pq.write_table(pa.table(columns), path)
            paths.append(path)
        ours = _child(sys.executable, _DRIFTLOOP_JOB, *paths)
        peer = _child(evidently_python, _EVIDENTLY_JOB, *paths) if evidently_python else None
    if ours is None:
        return rows
    cells = [f"{rows_n:,} x 10 Parquet", f"{ours[0]:.1f} s / {ours[1]:,.0f} MB"]
    if peer is None:
        cells += ["not installed", "", ""]
    else:
        cells += [f"{peer[0]:.1f} s / {peer[1]:,.0f} MB", f"{peer[0] / ours[0]:.1f}x",
                  f"{peer[1] / ours[1]:.2f}x"]
    rows.append(cells)
    show("5. drift-report: both files read, every statistic computed (CPU time / peak RSS)",
         ["input", "driftloop", "Evidently (KS, chi2)", "speed-up", "peer / our memory"],
         rows)
    return rows


def _evidently_python() -> str | None:
    """An interpreter that can import evidently: this one, ``$EVIDENTLY_PYTHON``, or the
    bench venv's (``.venv-bench`` beside this checkout)."""
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("evidently") is not None:
        return sys.executable
    if os.environ.get("EVIDENTLY_PYTHON"):
        return os.environ["EVIDENTLY_PYTHON"]
    venv = Path(__file__).resolve().parents[1] / ".venv-bench" / "bin" / "python"
    return str(venv) if venv.exists() else None


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} CPUs"


SECTIONS: dict[str, Callable[[bool, bool], list[list[str]]]] = {
    "observe": lambda quick, _: bench_observe(quick),
    "evaluation": lambda quick, _: bench_evaluation(quick),
    "build": lambda quick, _: bench_build(quick),
    "memory": lambda quick, _: bench_memory(quick),
    "report": lambda quick, peers: bench_drift_report(
        quick, _evidently_python() if peers else None),
}
#: The sections ``--old`` runs for both trees, interleaved (build and memory run once).
COMPARED = ("observe", "evaluation", "report")
ROWS_MARK = "ROWS "


def run_all(quick: bool, sections: Sequence[str] = tuple(SECTIONS), peers: bool = True,
            rows_out: bool = False) -> None:
    print(f"drift core speed ({'quick' if quick else 'full'}); load average before: "
          f"{load_average()}; python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"pandas {pd.__version__}, pyarrow {pa.__version__}")
    found = {name: SECTIONS[name](quick, peers) for name in sections}
    print(f"\nload average after: {load_average()}")
    if rows_out:
        print(ROWS_MARK + json.dumps(found))


# ---------------------------------------------------------------------------- --old
def _rows_of(src: str, section: str, quick: bool, peers: bool) -> list[list[str]]:
    """One section's rows, measured in a fresh process importing driftloop from ``src``."""
    import subprocess  # noqa: PLC0415

    command = [sys.executable, __file__, "--only", section, "--rows",
               *(["--quick"] if quick else []), *([] if peers else ["--no-peers"])]
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    marked = [line for line in done.stdout.splitlines() if line.startswith(ROWS_MARK)]
    rows: list[list[str]] = json.loads(marked[-1][len(ROWS_MARK):])[section]
    return rows


def _number(cell: str) -> float:
    found = re.search(r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?", cell)
    return float(found.group().replace(",", "")) if found else float("nan")


def _median_cell(cells: Sequence[str]) -> str:
    """The cell whose leading number is the median of the rounds' (the lower middle
    one for an even count)."""
    ordered = sorted(cells, key=_number)
    return ordered[(len(ordered) - 1) // 2]


def _gain(before: str, after: str) -> str:
    """How much faster ``after`` is: a ratio of rates, or of times inverted."""
    b, a = _number(before), _number(after)
    if not (b > 0 and a > 0):
        return ""
    return f"{a / b:.2f}x" if "/s" in after and " / " not in after else f"{b / a:.2f}x"


def compare(old: str, rounds: int, quick: bool, sections: Sequence[str] = COMPARED) -> None:
    """``sections`` (default 1, 2 and 5) for the tree at ``old`` and this one, ``rounds``
    times, alternating, each run in a fresh process; medians side by side. The peers
    (to_numpy, scipy, Evidently) run with this tree only."""
    here = str(Path(__file__).resolve().parents[1] / "src")
    print(f"before = {old}, after = {here}; {rounds} interleaved rounds, medians; "
          f"load average before: {load_average()}")
    measured: dict[str, dict[str, list[list[list[str]]]]] = {
        section: {"before": [], "after": []} for section in sections}
    for round_ in range(rounds):
        for section in sections:
            for label, src in (("before", old), ("after", here)):
                rows = _rows_of(src, section, quick, peers=label == "after")
                measured[section][label].append(rows)
                print(f"  {label} {section}: " + "; ".join(" ".join(r[:2]) for r in rows))
        print(f"  round {round_ + 1} of {rounds} done; load average {load_average()}")
    for section in sections:
        before, after = measured[section]["before"], measured[section]["after"]
        table = []
        for i, row in enumerate(after[0]):
            old_cell = _median_cell([r[i][1] for r in before])
            new_cell = _median_cell([r[i][1] for r in after])
            peers = [_median_cell([r[i][j] for r in after]) for j in range(2, len(row))]
            table.append([row[0], old_cell, new_cell, _gain(old_cell, new_cell), *peers])
        width = max(len(r) for r in table)
        headers = ["case", "before", "after", "after vs before", "peer (after run)",
                   "after vs peer", "more"][:width]
        show(f"{section}: medians of {rounds} rounds", headers,
             [r + [""] * (width - len(r)) for r in table])
    print(f"\nload average after: {load_average()}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a much smaller smoke run")
    parser.add_argument("--only", action="append", choices=list(SECTIONS),
                        help="run only this section (repeatable)")
    parser.add_argument("--old", metavar="SRC",
                        help="another driftloop source tree (a checkout's src/): sections "
                             "1, 2 and 5 (or those named by --only) for it and for this "
                             "one, interleaved, medians")
    parser.add_argument("--rounds", type=int, default=3, help="rounds for --old")
    parser.add_argument("--no-peers", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rows", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.old:
        compare(args.old, args.rounds, args.quick,
                [s for s in COMPARED if s in args.only] if args.only else COMPARED)
        return 0
    run_all(args.quick, args.only or tuple(SECTIONS), peers=not args.no_peers,
            rows_out=args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
