"""What does driftloop's serving machinery cost, next to the same model behind bare FastAPI?

What is measured, and why
-------------------------
The same model — the scikit-learn pipeline of ``tests/served_model.py`` (v1, the champion
of a fresh SQLite registry, trained on a snapshot of sklearn's bundled breast-cancer data),
loaded from the same registry — behind two servers, both uvicorn with one worker on
127.0.0.1:

- **bare**: the FastAPI app in this file: one ``POST /predict`` taking the same body as
  driftloop's (``{"features": {...}, "request_id"?, "routing_key"?}``, validated by a
  pydantic model), calling ``model.predict_proba`` on a one-row DataFrame *on the event
  loop* (no thread hop: the fastest naive way for one worker; a call costs ~7 ms here,
  nearly all of it the pipeline's fixed overhead, whatever the number of rows) and
  answering ``model_version``, ``slot`` and ``output`` as driftloop does;
- **driftloop**: ``driftloop serve --workers 1`` with everything on: drift detection,
  prediction logging (SQLite) and shadow traffic — a second version (C=0.1) is pushed as
  candidate and ``PUT /api/traffic {"mode": "shadow", "shadow_fraction": 1.0}`` mirrors
  every request to it. Other settings are the server's defaults (micro-batching with
  ``max_wait_ms`` 2, ``drift_window`` 5000, ...).

Load: ``--concurrency`` (32) closed-loop connections, a warm-up (3 s, discarded), then a
fixed duration per target (20 s; ``--quick``: 1 s + 5 s), every request a fresh row from
``example_rows`` (a pool of 2000, seed 0). The warm-up runs on the same connections as the
measurement, and with wrk the measurement starts only once every connection has had a
response (the Python generator cannot tell, and only waits for the warm-up):
a saturated server can take seconds to accept its last connection (column "ramp s": the
bare app, blocking its event loop, accepts about one new connection per pass over the
others), and that start-up is not steady state.

Reported per target: 2xx responses per second, latency p50 / p99 (ms; nearest rank, from
every response of the window), errors (non-2xx, connection errors, timeouts), and the
cores the server's process tree and the load generator used (CPU seconds / wall seconds,
from /proc and the children's rusage: a server near 1.0 is CPU-bound — one Python process
can hardly use more — and a generator that needs a core would starve it on this 2-core
machine). Then the ratios driftloop/bare and the goals: throughput >= 0.8x bare, p99 <=
1.3x bare. The driftloop server's own counters (observations observed / dropped, mirrored
requests, candidate timeouts) and the number of predictions it logged are printed too:
dropping observations would make it look cheaper than it is.

The load generator is ``wrk`` (one thread, C, epoll: a few % of a core) with the Lua script
of ``loadgen.py`` (each request carries a unique ``request_id``, which both servers echo,
so the script times every response itself and counts only the window), when it is
installed (``apt-get install -y wrk``); otherwise the Python asyncio + httpx generator of
``loadgen.py`` in two separate processes (heavier: about half a core, taken from the
server on this 2-core machine). The first line of the output says which.

Both servers start before either is measured; they are measured one after the other
(``--rounds N`` repeats the pair in alternating order, ABBA, and reports medians). The
machine is shared and noisy: compare the rows of one run, not runs with each other.

Running it
----------
From the repository root::

    .venv/bin/python benchmarks/serve_bench.py                 # ~1.5 minutes
    .venv/bin/python benchmarks/serve_bench.py --quick         # ~30 s, a smoke test
    .venv/bin/python benchmarks/serve_bench.py --rounds 3 --json serve.json
    .venv/bin/python benchmarks/serve_bench.py --set max_wait_ms=10   # a driftloop setting

Exit status: 0 when both goals are met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from driftloop.config import Settings
from driftloop.data.predictions import PredictionLog
from driftloop.registry import ModelRegistry
from loadgen import (
    Server,
    Summary,
    clean_env,
    driftloop_server,
    percentile,
    predict_bodies,
    python_load,
    registry_with_candidates,
    run_wrk,
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
MIN_THROUGHPUT_RATIO = 0.8
MAX_P99_RATIO = 1.3
PYTHON_PROCESSES = 2
HERE = Path(__file__).resolve().parent
BARE_ENV = ("SERVE_BENCH_DATABASE_URL", "SERVE_BENCH_DATA_DIR", "SERVE_BENCH_MODEL")


# --------------------------------------------------------------------------- the bare app
class Features(BaseModel):
    """The served model's features, as driftloop's generated request model has them."""

    model_config = ConfigDict(extra="forbid")
    mean_radius: float = Field(alias="mean radius", allow_inf_nan=False)
    mean_texture: float = Field(alias="mean texture", allow_inf_nan=False)
    mean_smoothness: float = Field(alias="mean smoothness", allow_inf_nan=False)
    worst_area: float = Field(alias="worst area", allow_inf_nan=False)
    size: str = Field(strict=True)


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: Features
    request_id: str | None = Field(None, min_length=1, max_length=64)
    routing_key: str | None = Field(None, min_length=1, max_length=200)


def create_bare_app() -> FastAPI:
    """The baseline (a uvicorn factory): the registry's champion behind one endpoint.
    Where the registry is comes from the SERVE_BENCH_* environment variables."""
    url, data_dir, name = (os.environ[key] for key in BARE_ENV)
    registry = ModelRegistry.open(url, artifacts=data_dir)
    champion = registry.get_champion(name)
    assert champion is not None
    model, version = registry.load(name, champion.version), champion.version
    registry.engine.dispose()
    app = FastAPI(title="bare")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(body: PredictRequest) -> dict[str, Any]:
        frame = pd.DataFrame([body.features.model_dump(by_alias=True)])
        proba = model.predict_proba(frame)[0]
        label = model.classes_[int(proba.argmax())].item()
        return {"request_id": body.request_id or uuid.uuid4().hex, "model_version": version,
                "slot": "champion", "output": {"prediction": label, "score": float(proba[1])}}

    return app


@contextmanager
def bare_server(settings: Settings, log_dir: Path) -> Iterator[Server]:
    env = clean_env(dict(zip(BARE_ENV, (settings.database_url, str(settings.data_dir),
                                        settings.model_name), strict=True)))
    with uvicorn_app("serve_bench:create_bare_app", HERE, log_dir, env) as server:
        yield server


# --------------------------------------------------------------------------- driftloop setup
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


def check_answers(server: Server, body: bytes) -> dict[str, Any]:
    """One request, to show both servers answer the same shape before the load."""
    response = httpx.post(f"{server.url}/predict", content=body, timeout=30,
                          headers={"content-type": "application/json"})
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


# --------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class Options:
    seconds: int
    warmup: int
    concurrency: int
    rounds: int
    wrk: str | None  # its path, or None for the Python generator
    overrides: dict[str, str]  # DRIFTLOOP_* settings of the driftloop server


def measure(target: str, server: Server, bodies: Sequence[bytes], script: Path | None,
            options: Options, tag: str) -> tuple[Summary, int]:
    """One target under load; also the 2xx count including the warm-up."""
    if options.wrk is not None and script is not None:
        return measure_wrk(target, server, script, options, tag)
    return measure_python(target, server, bodies, options)


def measure_wrk(target: str, server: Server, script: Path, options: Options, tag: str
                ) -> tuple[Summary, int]:
    assert options.wrk is not None
    cpu, started = tree_cpu_seconds(server.pid), time.monotonic()
    run = run_wrk(options.wrk, f"{server.url}/predict", script,
                  concurrency=options.concurrency, warmup=options.warmup,
                  seconds=options.seconds, tag=tag)
    wall = time.monotonic() - started
    server_cores = (tree_cpu_seconds(server.pid) - cpu) / wall  # warm-up included
    summary = Summary(target, "wrk", run.seconds, run.ok, run.errors, run.ok / run.seconds,
                      percentile(run.latencies_ms, 50), percentile(run.latencies_ms, 99),
                      server_cores, run.cpu_seconds / run.wall_s, run.ramp_s)
    return summary, run.all_ok


def measure_python(target: str, server: Server, bodies: Sequence[bytes], options: Options
                   ) -> tuple[Summary, int]:
    total = options.warmup + options.seconds
    with python_load(server.url, bodies, concurrency=options.concurrency, seconds=total,
                     processes=PYTHON_PROCESSES, read_version=False) as load:
        start = load.start()
        time.sleep(max(0.0, start + options.warmup - time.monotonic()))
        cpu, measured_from = tree_cpu_seconds(server.pid), time.monotonic()
        run = load.collect(timeout_s=total + 60)
        server_cores = (tree_cpu_seconds(server.pid) - cpu) / (time.monotonic() - measured_from)
    summary = summarize_records(run.records, run.start + options.warmup, run.stop,
                                target=target, generator="python", server_cores=server_cores,
                                loadgen_cores=run.cpu_seconds / total)
    return summary, sum(1 for r in run.records if 200 <= r[2] < 300)


def run_rounds(servers: dict[str, Server], bodies: Sequence[bytes], script: Path | None,
               options: Options) -> tuple[list[list[Summary]], dict[str, int]]:
    """Every round measures every target; odd rounds in reverse order (ABBA)."""
    rounds: list[list[Summary]] = []
    served = dict.fromkeys(servers, 0)
    for index in range(options.rounds):
        order = list(servers) if index % 2 == 0 else list(reversed(servers))
        results = []
        for target in order:
            summary, ok = measure(target, servers[target], bodies, script, options,
                                  tag=f"{target}{index}")
            served[target] += ok
            results.append(summary)
        rounds.append(sorted(results, key=lambda s: list(servers).index(s.target)))
    return rounds, served


def median_summary(rows: Sequence[Summary]) -> Summary:
    """Per-field median over rounds of one target (errors: the total)."""
    def med(field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in rows))

    first = rows[0]
    return Summary(first.target, first.generator, med("seconds"), round(med("requests")),
                   sum(r.errors for r in rows), med("rps"), med("p50_ms"), med("p99_ms"),
                   med("server_cores"), med("loadgen_cores"), med("ramp_s"))


# --------------------------------------------------------------------------- reporting
def goals(bare: Summary, driftloop: Summary) -> dict[str, Any]:
    throughput = driftloop.rps / bare.rps if bare.rps else float("nan")
    p99 = driftloop.p99_ms / bare.p99_ms if bare.p99_ms else float("nan")
    return {"throughput_ratio": throughput, "p99_ratio": p99,
            "throughput_pass": throughput >= MIN_THROUGHPUT_RATIO,
            "p99_pass": p99 <= MAX_P99_RATIO,
            "errors_pass": bare.errors == 0 and driftloop.errors == 0}


def table(rows: Sequence[Summary], label: str = "") -> list[str]:
    head = (f"{'target':<{12 + len(label)}} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | "
            f"{'errors':>6} | {'server cores':>12} | {'loadgen cores':>13} | {'ramp s':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.target + label:<{12 + len(label)}} | {r.rps:>8.1f} | "
                     f"{r.p50_ms:>7.2f} | {r.p99_ms:>7.2f} | {r.errors:>6d} | "
                     f"{r.server_cores:>12.2f} | {r.loadgen_cores:>13.2f} | "
                     f"{'-' if math.isnan(r.ramp_s) else f'{r.ramp_s:.1f}':>6}")
    return lines


def report(generator: str, options: Options, rounds: list[list[Summary]],
           final: list[Summary], verdict: dict[str, Any], extra: dict[str, Any]) -> str:
    lines = [f"serve_bench: load generator {generator}; concurrency {options.concurrency}; "
             f"{options.warmup} s warm-up + {options.seconds} s per target; "
             f"{options.rounds} round(s); {os.cpu_count()} CPUs; Python "
             f"{platform.python_version()}",
             "driftloop settings: " + (", ".join(f"{k}={v}" for k, v in options.overrides.items())
                                       or "the defaults"), ""]
    if len(rounds) > 1:
        for index, rows in enumerate(rounds, 1):
            lines += [*table(rows, f" (round {index})"), ""]
        lines.append("median over rounds:")
    lines += [*table(final), ""]
    ok = {True: "PASS", False: "FAIL"}
    lines.append(f"driftloop/bare throughput: {verdict['throughput_ratio']:.2f}x "
                 f"(goal >= {MIN_THROUGHPUT_RATIO}x) {ok[verdict['throughput_pass']]}")
    lines.append(f"driftloop/bare p99:        {verdict['p99_ratio']:.2f}x "
                 f"(goal <= {MAX_P99_RATIO}x) {ok[verdict['p99_pass']]}")
    lines.append(f"errors: {ok[verdict['errors_pass']]}")
    lines.append(f"driftloop afterwards: {extra['observations']}; router {extra['router']}; "
                 f"predictions logged {extra['logged']}, 2xx responses received "
                 f"{extra['served']} (requests cut off when a run stops are logged, not "
                 "received)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="1 s warm-up + 5 s per target")
    parser.add_argument("--seconds", type=int, help="measured seconds per target [20]")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per target [3]")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the pair, ABBA")
    parser.add_argument("--python-load", action="store_true",
                        help="use the Python generator even where wrk is installed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a driftloop setting for its server, e.g. max_wait_ms=10 "
                        "(repeatable; default: none, the server's defaults)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    seconds = args.seconds or (5 if args.quick else 20)
    warmup = args.warmup or (1 if args.quick else 3)
    if not 1 <= args.rounds <= 20 or not 1 <= seconds <= 600 or args.concurrency < 1:
        raise SystemExit("need 1 <= rounds <= 20, 1 <= seconds <= 600, concurrency >= 1")
    try:
        overrides = setting_overrides(args.set)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    return Options(seconds, warmup, args.concurrency, args.rounds,
                   None if args.python_load else wrk_path(), overrides)


def logged_predictions(settings: Settings) -> int:
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    try:
        return int(PredictionLog(registry.engine).count())
    finally:
        registry.engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = options_from(args)
    generator = (f"{wrk_version(options.wrk)} (1 thread)" if options.wrk
                 else f"python asyncio+httpx ({PYTHON_PROCESSES} processes)")
    bodies = predict_bodies(ROWS, SEED)
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as folder, ExitStack() as stack:
        root = Path(folder)
        settings, [candidate] = registry_with_candidates(root, [CANDIDATE_C])
        servers = {"bare": stack.enter_context(bare_server(settings, root)),
                   "driftloop": stack.enter_context(driftloop_server(settings, 1, root,
                                                                     options.overrides))}
        enable_shadow(servers["driftloop"], settings.admin_token or "", candidate)
        samples = {name: check_answers(server, bodies[0]) for name, server in servers.items()}
        script = write_wrk_script(bodies, root / "predict.lua") if options.wrk else None
        rounds, served = run_rounds(servers, bodies, script, options)
        state = httpx.get(f"{servers['driftloop'].url}/api/state", timeout=30).json()
        stack.close()  # stops both servers: driftloop flushes its prediction log
        extra = {"observations": state["observations"], "router": state["router"],
                 "logged": logged_predictions(settings), "served": served["driftloop"] + 1,
                 "sample_answers": samples}
    final = [median_summary([r[i] for r in rounds]) for i in range(len(servers))]
    verdict = goals(final[0], final[1])
    print(report(generator, options, rounds, final, verdict, extra))
    if args.json:
        args.json.write_text(json.dumps({
            "generator": generator, "options": asdict(options),
            "rounds": [[s.to_dict() for s in rows] for rows in rounds],
            "median": [s.to_dict() for s in final], "goals": verdict, "driftloop": extra,
            "cpus": os.cpu_count(), "python": platform.python_version()}, indent=2) + "\n")
    passed = verdict["throughput_pass"] and verdict["p99_pass"] and verdict["errors_pass"]
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
