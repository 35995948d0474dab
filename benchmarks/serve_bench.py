"""Serving throughput against its bounds and its peer: the framework's floor, the model's
own limit, a bare FastAPI endpoint, BentoML's adaptive batching and driftloop, one run.

What is measured, and why
-------------------------
One model — the scikit-learn pipeline of ``tests/served_model.py`` (v1, the champion of a
fresh SQLite registry, trained on a snapshot of sklearn's bundled breast-cancer data) —
and, for shadow traffic, a second version (C=0.1) pushed as candidate. Every server is one
process on 127.0.0.1 taking the same ``POST /predict`` body (``{"features": {...},
"request_id"?, "routing_key"?}``, validated by pydantic) and answering ``request_id``,
``model_version``, ``slot`` and ``output``:

(a) **floor**: a FastAPI endpoint in uvicorn that validates the body and answers a
    constant: what the web framework alone costs per request, no model;
(b) **model bound** (no server): ``predict_batch`` of driftloop's model adapter on batches
    of the served batch size (``max_batch``, 64), both models (the shadow runs every row
    on the candidate too), CPU seconds of this process, median over batches; plus (a)'s
    CPU per request. ``1 / (model CPU per request + floor CPU per request)`` is the
    model-plus-framework bound in requests per CPU-second: no server that runs both
    models on every request behind this framework can do better on one core;
(c) **bare**: a FastAPI endpoint calling ``predict_proba`` on a one-row DataFrame per
    request, on the event loop (the fastest naive way for one worker);
(d) **BentoML** (``bentoml_service.py``, run by ``bentoml serve`` from ``.venv-bentoml``):
    one worker, one batchable API with adaptive batching (up to ``max_batch`` rows), the
    same model call; its body is the same row inside ``{"rows": [...]}``, the shape a
    batchable API takes;
(e) **driftloop**: ``driftloop serve --workers 1``, defaults, with drift detection,
    prediction logging (SQLite, journalled) and ``PUT /api/traffic {"mode": "shadow",
    "shadow_fraction": 1.0}``: every request also runs on the candidate;
(f) **driftloop, not observed**: the same server and shadow, but nothing is offered to
    the observation path (this file's ``create_unobserved_app``: ``log_predictions``
    off and the monitor's ``offer`` replaced by a no-op), so (f) − (e) is what the drift
    detector and the prediction log cost.

Load: ``--concurrency`` (32) closed-loop keep-alive connections, a warm-up (3 s,
discarded), then a fixed duration per target (20 s; ``--quick``: 1 s + 5 s), every request
a fresh row from ``example_rows`` (a pool of 2000, seed 0). The generator is ``wrk`` (one
thread, C: a few % of a core) with the Lua script of ``loadgen.py``, which times every
response by the ``request_id`` each server echoes and counts only a window that opens
after the warm-up and once every connection had a response; without wrk (``apt-get
install -y wrk``) the Python asyncio + httpx generator of ``loadgen.py`` in two separate
processes (about half a core, taken from the server on a 2-core machine).

Reported per target: 2xx responses per second, latency p50 / p99 (ms, nearest rank),
errors, the cores the server's process tree used (CPU seconds / wall seconds, from
/proc), requests per server CPU-second (2xx of the whole run / CPU of the whole run: the
figure that a busy machine does not distort, as waiting for a core costs no CPU), and
the ratios to (b) (per CPU-second) and to (d) (per second). All servers run throughout;
each round measures every target and the bound, in alternating order (ABBA), and the
table is the median over ``--rounds``. The load average is printed before and after.

Goals (issue 14), each the median over rounds of its ratio within a round (targets
measured minutes apart on a shared machine compare best within their round): (e) ≥ 0.5 of
the bound, (e) ≥ 2× (d), the observation path (1 − (e)/(f)) ≤ 20 %, and no errors from
driftloop. The driftloop servers' own counters (observations
observed / dropped, mirrored requests) and BentoML's batches are printed too: dropping
observations or mirrors would make driftloop look cheaper than it is.

Running it
----------
From the repository root::

    .venv/bin/python benchmarks/serve_bench.py                 # ~7 minutes
    .venv/bin/python benchmarks/serve_bench.py --quick         # ~1.5 minutes, a smoke test
    .venv/bin/python benchmarks/serve_bench.py --rounds 3 --json serve.json
    .venv/bin/python benchmarks/serve_bench.py --set max_wait_ms=10   # a driftloop setting

BentoML is found as ``.venv-bentoml/bin/bentoml`` (``make bench`` builds it: BentoML pins
its own web stack, so it gets a virtual environment of its own), or ``--bentoml PATH``;
without it, (d) is left out and said so. Exit status: 0 when every goal is met, 1
otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from fastapi import FastAPI

from bench_request import PredictRequest
from driftloop.config import RESOLVED_ENV, Settings
from driftloop.data.predictions import PredictionLog
from driftloop.models.served import served
from driftloop.registry import ModelRegistry
from driftloop.serving.supervisor import HTTP as DRIFTLOOP_HTTP
from driftloop.threads import limit_threads, thread_environment
from loadgen import (
    ROOT,
    Server,
    Summary,
    clean_env,
    driftloop_server,
    example_rows,
    free_port,
    percentile,
    predict_bodies,
    python_load,
    registry_with_candidates,
    run_wrk,
    running,
    setting_overrides,
    summarize_records,
    tree_cpu_seconds,
    uvicorn_app,
    write_wrk_script,
    wrk_path,
    wrk_version,
)

SEED = 0
ROWS = 2000
CANDIDATE_C = 0.1
MIN_BOUND_SHARE = 0.5  # driftloop's requests per CPU-second / the model-plus-framework bound
MIN_VS_BENTOML = 2.0  # driftloop's req/s / BentoML's
MAX_OBSERVATION_COST = 0.2  # 1 - observed req/s / unobserved req/s
PYTHON_PROCESSES = 2
BOUND_BATCHES = 30  # batches per model per round for the model bound
HERE = Path(__file__).resolve().parent
BARE_ENV = ("SERVE_BENCH_DATABASE_URL", "SERVE_BENCH_DATA_DIR", "SERVE_BENCH_MODEL")
#: The targets in table order; "bound" is measured in this process, not served.
FLOOR, BOUND, BARE, BENTOML = "floor", "model bound", "bare", "bentoml"
DRIFTLOOP, UNOBSERVED = "driftloop", "driftloop unobserved"
#: BentoML's batchable API takes a list of rows: each body goes inside this.
BENTOML_WRAP = ('{"rows":[', "]}")


# --------------------------------------------------------------------------- the bench's apps
def _health(app: FastAPI) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}


def create_floor_app() -> FastAPI:
    """(a), a uvicorn factory: the same body validated, a constant answer, no model."""
    app = FastAPI(title="floor")
    _health(app)

    @app.post("/predict")
    async def predict(body: PredictRequest) -> dict[str, Any]:
        return {"request_id": body.request_id or uuid.uuid4().hex, "model_version": 1,
                "slot": "champion", "output": {"prediction": 1, "score": 0.5}}

    return app


def create_bare_app() -> FastAPI:
    """(c), a uvicorn factory: the registry's champion behind one endpoint. Where the
    registry is comes from the SERVE_BENCH_* environment variables."""
    url, data_dir, name = (os.environ[key] for key in BARE_ENV)
    registry = ModelRegistry.open(url, artifacts=data_dir)
    champion = registry.get_champion(name)
    assert champion is not None
    model, version = registry.load(name, champion.version), champion.version
    registry.engine.dispose()
    app = FastAPI(title="bare")
    _health(app)

    @app.post("/predict")
    async def predict(body: PredictRequest) -> dict[str, Any]:
        frame = pd.DataFrame([body.features.model_dump(by_alias=True)])
        proba = model.predict_proba(frame)[0]
        label = model.classes_[int(proba.argmax())].item()
        return {"request_id": body.request_id or uuid.uuid4().hex, "model_version": version,
                "slot": "champion", "output": {"prediction": label, "score": float(proba[1])}}

    return app


def create_unobserved_app() -> FastAPI:
    """(f), a uvicorn factory: driftloop's own app for the resolved settings in the
    environment, with nothing offered to the observation path (the bench's patch)."""
    from driftloop.serving.app import create_app  # noqa: PLC0415 - in the server only

    settings = Settings.load()
    limit_threads(settings.resolved_threads)
    app = create_app(settings)
    app.state.service.monitor.offer = lambda observation: None
    return app


# --------------------------------------------------------------------------- the servers
@contextmanager
def bench_app(factory: str, settings: Settings, log_dir: Path) -> Iterator[Server]:
    """(a) or (c) in uvicorn, its native pools limited like driftloop's."""
    env = clean_env(thread_environment(settings.resolved_threads, dict(zip(
        BARE_ENV, (settings.database_url, str(settings.data_dir), settings.model_name),
        strict=True))))
    with uvicorn_app(f"serve_bench:{factory}", HERE, log_dir, env) as server:
        yield server


@contextmanager
def unobserved_server(settings: Settings, log_dir: Path, overrides: dict[str, str]
                      ) -> Iterator[Server]:
    """(f) in uvicorn with driftloop's own HTTP protocol, as ``driftloop serve`` runs it."""
    resolved = Settings.load(env={**overrides, "DRIFTLOOP_DATABASE_URL": settings.database_url,
                                  "DRIFTLOOP_DATA_DIR": str(settings.data_dir),
                                  "DRIFTLOOP_MODEL_NAME": settings.model_name,
                                  "DRIFTLOOP_ADMIN_TOKEN": settings.admin_token or "",
                                  "DRIFTLOOP_LOG_PREDICTIONS": "false"})
    env = clean_env({RESOLVED_ENV: resolved.to_blob()})
    with uvicorn_app("serve_bench:create_unobserved_app", HERE, log_dir, env,
                     http=DRIFTLOOP_HTTP) as server:
        yield server


def bentoml_command(explicit: str | None) -> str | None:
    """BentoML's command: ``explicit``, else the bench's own virtual environment's."""
    if explicit:
        return explicit
    found = [p for p in (ROOT / ".venv-bentoml" / "bin" / "bentoml",) if p.is_file()]
    return str(found[0]) if found else shutil.which("bentoml")


@contextmanager
def bentoml_server(exe: str, settings: Settings, log_dir: Path, max_batch: int
                   ) -> Iterator[Server]:
    """(d): the champion written for ``bentoml_service.py`` (skops; the bench trusts its
    own model's types), then ``bentoml serve`` on a free port."""
    import skops.io as sio  # noqa: PLC0415 - only here

    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    champion = registry.get_champion(settings.model_name)
    assert champion is not None
    model = registry.load(settings.model_name, champion.version)
    registry.engine.dispose()
    path = log_dir / "bentoml-model.skops"
    sio.dump(model, path)
    env = clean_env(thread_environment(settings.resolved_threads, {
        "SERVE_BENCH_MODEL_FILE": str(path),
        "SERVE_BENCH_TRUSTED": json.dumps(sio.get_untrusted_types(file=path)),
        "SERVE_BENCH_FEATURES": json.dumps(list(model.feature_names_in_)),
        "SERVE_BENCH_VERSION": str(champion.version),
        "SERVE_BENCH_MAX_BATCH": str(max_batch),
        "BENTOML_HOME": str(log_dir / "bentoml-home"),
        "BENTOML_DO_NOT_TRACK": "true"}))
    env.pop("PYTHONPATH", None)  # BentoML's environment, not driftloop's
    port = free_port()
    cmd = [exe, "serve", "bentoml_service:Served", "--working-dir", str(HERE), "--host",
           "127.0.0.1", "--port", str(port)]
    with running(cmd, port, log_dir / f"bentoml-{port}.log", env=env, cwd=log_dir,
                 health="/readyz", healthy=lambda r: r.status_code == 200) as server:
        yield server


def enable_shadow(server: Server, token: str, candidate: int) -> dict[str, Any]:
    """Mirror every request to the candidate; check that the server says so."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.put("/api/traffic", headers=headers,
                   json={"mode": "shadow", "shadow_fraction": 1.0}).raise_for_status()
        state: dict[str, Any] = client.get("/api/state").json()
    if state["traffic"]["mode"] != "shadow" or (state["candidate"] or {}).get(
            "version") != candidate:
        raise RuntimeError(f"shadow traffic is not on: {state}")
    return state


def check_answers(target: Target, body: bytes) -> Any:
    """One request, to show every server answers before the load."""
    prefix, suffix = target.wrap
    response = httpx.post(f"{target.server.url}/predict", timeout=30,
                          content=prefix.encode() + body + suffix.encode(),
                          headers={"content-type": "application/json"})
    response.raise_for_status()
    return response.json()


# --------------------------------------------------------------------------- the model bound
@dataclass(frozen=True)
class Bound:
    """One round's model bound (seconds are CPU seconds of this process)."""

    batch: int
    model_s_per_row: float  # both models
    floor_s_per_request: float

    @property
    def model_rps(self) -> float:
        return 1 / self.model_s_per_row

    @property
    def rps(self) -> float:
        """The model-plus-framework bound, requests per CPU-second."""
        return 1 / (self.model_s_per_row + self.floor_s_per_request)


class ModelBound:
    """Both models through driftloop's adapter, loaded once, timed each round."""

    def __init__(self, settings: Settings, versions: Sequence[int], batch: int) -> None:
        registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
        loaded = [registry.load(settings.model_name, v) for v in versions]
        self.models = [served(m, list(m.feature_names_in_)) for m in loaded]
        registry.engine.dispose()
        self.batch = batch
        self.rows = example_rows(batch * BOUND_BATCHES, seed=SEED + 1)
        for model in self.models:
            model.predict_batch(self.rows[:batch])  # warm

    def seconds_per_row(self) -> float:
        """CPU seconds per row of ``predict_batch`` on full batches, summed over the models
        (median of BOUND_BATCHES batches each)."""
        total, batch = 0.0, self.batch
        for model in self.models:
            times = []
            for k in range(BOUND_BATCHES):
                started = time.process_time()
                model.predict_batch(self.rows[k * batch:(k + 1) * batch])
                times.append(time.process_time() - started)
            total += statistics.median(times) / batch
        return total


# --------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class Options:
    seconds: int
    warmup: int
    concurrency: int
    rounds: int
    wrk: str | None  # its path, or None for the Python generator
    overrides: dict[str, str]  # DRIFTLOOP_* settings of the driftloop servers
    bentoml: str | None  # BentoML's command, or None: (d) left out


@dataclass(frozen=True)
class Target:
    """One server under test and how its bodies are sent."""

    name: str
    server: Server
    wrap: tuple[str, str] = ("", "")
    script: Path | None = None  # wrk's Lua script, bodies wrapped


@dataclass(frozen=True)
class Row:
    """One target in one round (or the median over rounds)."""

    summary: Summary
    requests_per_cpu_s: float  # 2xx per CPU-second of the server's process tree


def measure(target: Target, bodies: Sequence[bytes], options: Options, tag: str) -> Row:
    if options.wrk is not None and target.script is not None:
        return measure_wrk(target, options, tag)
    prefix, suffix = (text.encode() for text in target.wrap)
    return measure_python(target, [prefix + b + suffix for b in bodies], options)


def measure_wrk(target: Target, options: Options, tag: str) -> Row:
    assert options.wrk is not None and target.script is not None
    server = target.server
    cpu, started = tree_cpu_seconds(server.pid), time.monotonic()
    run = run_wrk(options.wrk, f"{server.url}/predict", target.script,
                  concurrency=options.concurrency, warmup=options.warmup,
                  seconds=options.seconds, tag=tag)
    wall = time.monotonic() - started
    used = tree_cpu_seconds(server.pid) - cpu  # the whole run, warm-up included
    summary = Summary(target.name, "wrk", run.seconds, run.ok, run.errors, run.ok / run.seconds,
                      percentile(run.latencies_ms, 50), percentile(run.latencies_ms, 99),
                      used / wall, run.cpu_seconds / run.wall_s, run.ramp_s)
    return Row(summary, run.all_ok / used if used > 0 else float("nan"))


def measure_python(target: Target, bodies: Sequence[bytes], options: Options) -> Row:
    total = options.warmup + options.seconds
    server = target.server
    with python_load(server.url, bodies, concurrency=options.concurrency, seconds=total,
                     processes=PYTHON_PROCESSES, read_version=False) as load:
        start = load.start()
        time.sleep(max(0.0, start + options.warmup - time.monotonic()))
        cpu, measured_from = tree_cpu_seconds(server.pid), time.monotonic()
        run = load.collect(timeout_s=total + 60)
        used = tree_cpu_seconds(server.pid) - cpu
        server_cores = used / (time.monotonic() - measured_from)
    summary = summarize_records(run.records, run.start + options.warmup, run.stop,
                                target=target.name, generator="python",
                                server_cores=server_cores,
                                loadgen_cores=run.cpu_seconds / total)
    return Row(summary, summary.requests / used if used > 0 else float("nan"))


@dataclass(frozen=True)
class Round:
    rows: dict[str, Row]  # by target name, in table order
    model_s_per_row: float


def run_rounds(targets: Sequence[Target], bound: ModelBound, bodies: Sequence[bytes],
               options: Options) -> list[Round]:
    """Every round measures every target and the model bound; odd rounds in reverse
    order (ABBA)."""
    rounds = []
    for index in range(options.rounds):
        steps: list[Target | None] = [*targets, None]  # None: the model bound
        if index % 2:
            steps.reverse()
        rows: dict[str, Row] = {}
        model_s = float("nan")
        for step in steps:
            if step is None:
                model_s = bound.seconds_per_row()
            else:
                rows[step.name] = measure(step, bodies, options, tag=f"r{index}{step.name[:4]}")
        rounds.append(Round({t.name: rows[t.name] for t in targets}, model_s))
    return rounds


def median_row(rows: Sequence[Row]) -> Row:
    """Per-field median over rounds of one target (errors: the total)."""
    def med(field: str) -> float:
        return float(statistics.median(getattr(r.summary, field) for r in rows))

    first = rows[0].summary
    summary = Summary(first.target, first.generator, med("seconds"), round(med("requests")),
                      sum(r.summary.errors for r in rows), med("rps"), med("p50_ms"),
                      med("p99_ms"), med("server_cores"), med("loadgen_cores"), med("ramp_s"))
    return Row(summary, float(statistics.median(r.requests_per_cpu_s for r in rows)))


def round_bound(rows: dict[str, Row], model_s_per_row: float, batch: int) -> Bound:
    return Bound(batch, model_s_per_row, 1 / rows[FLOOR].requests_per_cpu_s)


# --------------------------------------------------------------------------- reporting
def ratios(rows: dict[str, Row], bound: Bound) -> dict[str, float]:
    """One round's goal ratios: targets measured minutes apart on a shared machine compare
    best within their round."""
    drift, unobserved = rows[DRIFTLOOP], rows[UNOBSERVED]
    bento = rows.get(BENTOML)
    return {"bound_share": drift.requests_per_cpu_s / bound.rps,
            "vs_bentoml": drift.summary.rps / bento.summary.rps if bento else float("nan"),
            "vs_bentoml_cpu": (drift.requests_per_cpu_s / bento.requests_per_cpu_s if bento
                               else float("nan")),
            "observation_cost": 1 - drift.summary.rps / unobserved.summary.rps,
            "observation_cpu_cost": 1 - drift.requests_per_cpu_s / unobserved.requests_per_cpu_s}


def goals(rounds: Sequence[Round], batch: int) -> dict[str, Any]:
    """The median over rounds of each round's ratios, and whether each goal is met."""
    each = [ratios(r.rows, round_bound(r.rows, r.model_s_per_row, batch)) for r in rounds]
    out: dict[str, Any] = {key: float(statistics.median(e[key] for e in each))
                           for key in each[0]}
    ours = [r.rows[name].summary for r in rounds for name in (DRIFTLOOP, UNOBSERVED)]
    return out | {"bound_pass": out["bound_share"] >= MIN_BOUND_SHARE,
                  "bentoml_pass": out["vs_bentoml"] >= MIN_VS_BENTOML,  # NaN: not met
                  "observation_pass": out["observation_cost"] <= MAX_OBSERVATION_COST,
                  "errors_pass": all(s.errors == 0 for s in ours)}


def table(rows: dict[str, Row], bound: Bound, label: str = "") -> list[str]:
    width = 22 + len(label)
    head = (f"{'target':<{width}} | {'req/s':>7} | {'p50 ms':>7} | {'p99 ms':>7} | "
            f"{'errors':>6} | {'server cores':>12} | {'req/CPU-s':>9} | {'x bound':>7} | "
            f"{'x BentoML':>9}")
    lines = [head, "-" * len(head)]
    bento = rows.get(BENTOML)
    lines.append(f"{BOUND + label:<{width}} | {'-':>7} | {'-':>7} | {'-':>7} | {'-':>6} | "
                 f"{'-':>12} | {bound.rps:>9.0f} | {1:>7.2f} | {'-':>9}")
    for name, row in rows.items():
        r = row.summary
        versus = f"{r.rps / bento.summary.rps:.2f}" if bento else "-"
        lines.append(f"{name + label:<{width}} | {r.rps:>7.1f} | {r.p50_ms:>7.2f} | "
                     f"{r.p99_ms:>7.2f} | {r.errors:>6d} | {r.server_cores:>12.2f} | "
                     f"{row.requests_per_cpu_s:>9.0f} | "
                     f"{row.requests_per_cpu_s / bound.rps:>7.2f} | {versus:>9}")
    return lines


def report(generator: str, options: Options, rounds: list[Round], final: dict[str, Row],
           bound: Bound, verdict: dict[str, Any], extra: dict[str, Any]) -> str:
    lines = [f"serve_bench: load generator {generator}; concurrency {options.concurrency}; "
             f"{options.warmup} s warm-up + {options.seconds} s per target; "
             f"{options.rounds} round(s); {os.cpu_count()} CPUs; Python "
             f"{platform.python_version()}; load average {extra['load_before']:.1f} before, "
             f"{extra['load_after']:.1f} after",
             "driftloop settings: " + (", ".join(f"{k}={v}" for k, v in options.overrides.items())
                                       or "the defaults"),
             "BentoML: " + (extra["bentoml_version"] if options.bentoml else
                            "not found (make bench builds .venv-bentoml; or --bentoml PATH): "
                            "left out"), ""]
    if len(rounds) > 1:
        for index, one in enumerate(rounds, 1):
            lines += [*table(one.rows, round_bound(one.rows, one.model_s_per_row, bound.batch),
                             f" (round {index})"), ""]
        lines.append("median over rounds:")
    lines += [*table(final, bound), ""]
    lines.append(f"model bound: both models on batches of {bound.batch}, "
                 f"{bound.model_s_per_row * 1e6:.0f} us CPU per request "
                 f"({bound.model_rps:.0f} requests per CPU-second), plus the floor's "
                 f"{bound.floor_s_per_request * 1e6:.0f} us")
    ok = {True: "PASS", False: "FAIL"}
    lines.append("goals, each the median over rounds of its ratio within a round:")
    lines.append(f"driftloop / model bound (per CPU-second): {verdict['bound_share']:.2f} "
                 f"(goal >= {MIN_BOUND_SHARE}) {ok[verdict['bound_pass']]}")
    lines.append(f"driftloop / BentoML (req/s):              {verdict['vs_bentoml']:.2f}x "
                 f"(per CPU-second {verdict['vs_bentoml_cpu']:.2f}x; goal >= "
                 f"{MIN_VS_BENTOML}x) {ok[verdict['bentoml_pass']]}")
    lines.append(f"observation path cost (1 - observed/unobserved req/s): "
                 f"{verdict['observation_cost']:.0%} (per CPU-second "
                 f"{verdict['observation_cpu_cost']:.0%}; goal <= {MAX_OBSERVATION_COST:.0%}) "
                 f"{ok[verdict['observation_pass']]}")
    lines.append(f"errors of the driftloop servers: {ok[verdict['errors_pass']]}")
    lines.append(f"driftloop afterwards: {extra['observations']}; router {extra['router']}; "
                 f"predictions logged {extra['logged']}")
    lines.append(f"driftloop unobserved afterwards: {extra['unobserved_observations']}; "
                 f"router {extra['unobserved_router']}")
    if options.bentoml:
        lines.append(f"BentoML afterwards: {extra['bentoml_stats']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="1 s warm-up + 5 s per target")
    parser.add_argument("--seconds", type=int, help="measured seconds per target [20]")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per target [3]")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="repeat every target, ABBA [3]")
    parser.add_argument("--python-load", action="store_true",
                        help="use the Python generator even where wrk is installed")
    parser.add_argument("--bentoml", help="BentoML's command [.venv-bentoml/bin/bentoml]")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a driftloop setting for its servers, e.g. max_wait_ms=10 "
                        "(repeatable; default: none, the server's defaults)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    seconds = args.seconds or (5 if args.quick else 20)
    warmup = args.warmup or (1 if args.quick else 3)
    rounds = 1 if args.quick else args.rounds
    if not 1 <= rounds <= 20 or not 1 <= seconds <= 600 or args.concurrency < 1:
        raise SystemExit("need 1 <= rounds <= 20, 1 <= seconds <= 600, concurrency >= 1")
    try:
        overrides = setting_overrides(args.set)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    return Options(seconds, warmup, args.concurrency, rounds,
                   None if args.python_load else wrk_path(), overrides,
                   bentoml_command(args.bentoml))


def logged_predictions(settings: Settings) -> int:
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    try:
        return int(PredictionLog(registry.engine).count())
    finally:
        registry.engine.dispose()


def bentoml_version(exe: str) -> str:
    python = Path(exe).with_name("python")
    out = subprocess.run([str(python), "-c", "import bentoml; print(bentoml.__version__)"],
                         capture_output=True, text=True, timeout=120, check=False)
    return f"BentoML {out.stdout.strip() or '(version unknown)'} ({exe})"


def start_targets(stack: ExitStack, settings: Settings, candidate: int, root: Path,
                  options: Options, batch: int) -> list[Target]:
    """Every server, started one after the other, shadow on where driftloop runs."""
    servers = {FLOOR: stack.enter_context(bench_app("create_floor_app", settings, root)),
               BARE: stack.enter_context(bench_app("create_bare_app", settings, root))}
    if options.bentoml:
        servers[BENTOML] = stack.enter_context(bentoml_server(options.bentoml, settings, root,
                                                              batch))
    servers[DRIFTLOOP] = stack.enter_context(driftloop_server(settings, 1, root,
                                                              options.overrides))
    servers[UNOBSERVED] = stack.enter_context(unobserved_server(settings, root,
                                                                options.overrides))
    for name in (DRIFTLOOP, UNOBSERVED):
        enable_shadow(servers[name], settings.admin_token or "", candidate)
    return [Target(name, server, BENTOML_WRAP if name == BENTOML else ("", ""))
            for name, server in servers.items()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = options_from(args)
    generator = (f"{wrk_version(options.wrk)} (1 thread)" if options.wrk
                 else f"python asyncio+httpx ({PYTHON_PROCESSES} processes)")
    bodies = predict_bodies(ROWS, SEED)
    extra: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    if options.bentoml:
        extra["bentoml_version"] = bentoml_version(options.bentoml)
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as folder, ExitStack() as stack:
        root = Path(folder)
        settings, [candidate] = registry_with_candidates(root, [CANDIDATE_C])
        limit_threads(settings.resolved_threads)  # the model bound's pools, as the servers'
        batch = int(options.overrides.get("DRIFTLOOP_MAX_BATCH", settings.max_batch))
        bound = ModelBound(settings, [1, candidate], batch)
        targets = start_targets(stack, settings, candidate, root, options, batch)
        targets = [replace(t, script=write_wrk_script(bodies, root / f"{i}.lua", t.wrap))
                   if options.wrk else t for i, t in enumerate(targets)]
        extra["sample_answers"] = {t.name: check_answers(t, bodies[0]) for t in targets}
        rounds = run_rounds(targets, bound, bodies, options)
        urls = {t.name: t.server.url for t in targets}
        state = httpx.get(f"{urls[DRIFTLOOP]}/api/state", timeout=30).json()
        quiet = httpx.get(f"{urls[UNOBSERVED]}/api/state", timeout=30).json()
        if options.bentoml:
            extra["bentoml_stats"] = httpx.post(f"{urls[BENTOML]}/stats", json={},
                                                timeout=30).json()
        stack.close()  # stops every server: driftloop flushes its prediction log
        extra |= {"observations": state["observations"], "router": state["router"],
                  "unobserved_observations": quiet["observations"],
                  "unobserved_router": quiet["router"], "logged": logged_predictions(settings),
                  "load_after": os.getloadavg()[0]}
    final = {name: median_row([r.rows[name] for r in rounds]) for name in rounds[0].rows}
    bound_final = round_bound(final, float(statistics.median(r.model_s_per_row
                                                             for r in rounds)), batch)
    verdict = goals(rounds, batch)
    print(report(generator, options, rounds, final, bound_final, verdict, extra))
    if args.json:
        args.json.write_text(json.dumps({
            "generator": generator, "options": asdict(options),
            "rounds": [{"rows": {k: {**v.summary.to_dict(),
                                     "requests_per_cpu_s": v.requests_per_cpu_s}
                                 for k, v in r.rows.items()},
                        "model_s_per_row": r.model_s_per_row} for r in rounds],
            "median": {k: {**v.summary.to_dict(), "requests_per_cpu_s": v.requests_per_cpu_s}
                       for k, v in final.items()},
            "bound": {**asdict(bound_final), "rps": bound_final.rps}, "goals": verdict,
            "extra": extra, "cpus": os.cpu_count(), "python": platform.python_version()},
            indent=2, default=str) + "\n")
    passed = all(verdict[k] for k in ("bound_pass", "bentoml_pass", "observation_pass",
                                      "errors_pass"))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
