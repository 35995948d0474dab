"""Promotions and rollbacks under load: does every request succeed, and how soon does every
worker answer with the new champion?

What is measured, and why
-------------------------
``driftloop serve --workers 2`` on SQLite (a fresh registry whose champion v1 is the
pipeline of ``tests/served_model.py``, plus candidates pushed beforehand, all trained on
the champion's snapshot) serves ``--concurrency`` (32) closed-loop clients for 30 s
(``--quick``: 10 s). Meanwhile a separate thread performs ``--swaps`` (20; ``--quick``: 6)
admin calls over HTTP with the bearer token, evenly spread from 1 s after the start to 2 s
before the end: ``POST /api/models/{v}/promote`` of a fresh candidate, then
``POST /api/rollback``, alternately. A promotion is answered by whichever worker the
connection lands on, which swaps before it answers; the other worker follows the registry
(it polls every 0.5 s). ``--quick`` has fewer swaps so that they stay further apart than
that poll: otherwise a swap is often overtaken by the next one before it can converge.

The load comes from the Python asyncio + httpx generator of ``loadgen.py`` in two
processes of their own (wrk cannot easily record which version answered). Every response
is recorded: when it was sent and answered (the system-wide monotonic clock, shared with
the admin thread), its status and its ``model_version``.

Reported: total requests; failed requests (non-2xx, connection errors, timeouts, or a 2xx
without a model_version; goal 0); and for every swap:

- **admin ms**: the admin call's own duration (the answering worker loads, checks and warms
  the model before it returns);
- **in flight**: responses with another version to requests sent *before* the call
  returned and answered after it. They are legitimate: a request finishes on the model it
  started on;
- **stale**: responses with another version to requests sent *after* the call returned
  and answered before the next admin call began: the swap's *window* (for the last swap:
  sent before the load stopped). A request that straddles the next call is left out of
  both swaps' windows, as the next swap may legitimately have changed its version;
- **converged ms** — the definition: the time from the admin call's return to the
  *arrival* of the last stale response, 0 when there is none. After that instant, every
  response to a request sent after the call returned carries the new version: it is the
  time until every subsequent response carries the new version, seen by a client. It
  bounds from above the moment the last worker switched (that moment lies between the
  last stale request's sending and its response). It is only known when a request sent
  after that last stale response was answered before the next admin call: otherwise the
  swap did not converge within its window and is marked "not converged" (a failure).
  Goal: at most 1000 ms for every swap; max and median are printed;
- **last stale sent ms**: when the last stale request was sent, from the return: a lower
  bound of the same switch.

Every swap's answer must also name the expected champion (the candidate, or v1 after a
rollback). The machine has 2 shared cores: absolute request rates are not the point here.

Running it
----------
From the repository root::

    .venv/bin/python benchmarks/hotswap_bench.py               # ~45 s
    .venv/bin/python benchmarks/hotswap_bench.py --quick       # ~25 s
    .venv/bin/python benchmarks/hotswap_bench.py --json hotswap.json
    .venv/bin/python benchmarks/hotswap_bench.py --set poll_interval=0.25  # a setting

Exit status: 0 when every goal is met, 1 otherwise.
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
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from loadgen import (
    LoadRun,
    Record,
    driftloop_server,
    predict_bodies,
    python_load,
    registry_with_candidates,
    setting_overrides,
    tree_cpu_seconds,
)

SEED = 0
ROWS = 2000
WORKERS = 2
PROCESSES = 2
FIRST_SWAP_S = 1.0  # after the load starts
LAST_SWAP_MARGIN_S = 2.0  # before it ends
CHAMPION = 1  # v1, what every rollback here returns to


# --------------------------------------------------------------------------- the swaps
@dataclass(frozen=True)
class PlannedSwap:
    at: float  # seconds after the load starts
    kind: str  # "promote" | "rollback"
    version: int | None  # the candidate to promote
    expected: int  # the champion the answer must name


@dataclass(frozen=True)
class Swap:
    index: int
    kind: str
    expected: int
    called: float  # monotonic
    returned: float  # monotonic
    status: int  # 0: no answer
    version: int  # the champion the answer names (-1: none)
    error: str


def plan(count: int, candidates: Sequence[int], seconds: float) -> list[PlannedSwap]:
    """Promote candidates[0], roll back, promote candidates[1], ... evenly spread."""
    step = (seconds - FIRST_SWAP_S - LAST_SWAP_MARGIN_S) / max(1, count - 1)
    swaps = []
    for i in range(count):
        at = FIRST_SWAP_S + i * step
        if i % 2 == 0:
            version = candidates[i // 2]
            swaps.append(PlannedSwap(at, "promote", version, version))
        else:
            swaps.append(PlannedSwap(at, "rollback", None, CHAMPION))
    return swaps


def perform(client: httpx.Client, index: int, planned: PlannedSwap) -> Swap:
    path = (f"/api/models/{planned.version}/promote" if planned.kind == "promote"
            else "/api/rollback")
    called = time.monotonic()
    try:
        response = client.post(path, json={"reason": f"hotswap_bench swap {index}"})
    except httpx.HTTPError as exc:
        return Swap(index, planned.kind, planned.expected, called, time.monotonic(), 0, -1,
                    type(exc).__name__)
    returned = time.monotonic()
    version, error = -1, ""
    try:
        version = int(response.json()["champion"]["version"])
    except (ValueError, KeyError, TypeError):
        error = response.text[:200]
    return Swap(index, planned.kind, planned.expected, called, returned,
                response.status_code, version, error)


def run_swaps(url: str, token: str, swaps: Sequence[PlannedSwap], start: float,
              out: list[Swap]) -> None:
    """The admin thread: each swap at its time (never earlier), one after the other."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for index, planned in enumerate(swaps, 1):
            time.sleep(min(60.0, max(0.0, start + planned.at - time.monotonic())))
            out.append(perform(client, index, planned))


# --------------------------------------------------------------------------- analysis
@dataclass(frozen=True)
class Convergence:
    swap: Swap
    window_end: float  # the next admin call, or the end of the load
    in_flight: int  # other-version responses to requests sent before the return
    stale: int  # other-version responses to requests sent after it (in the window)
    checked: int  # 2xx responses to requests sent in the window
    converged_s: float | None  # None: not converged within the window (or the call failed)
    last_stale_sent_s: float | None

    def passed(self, goal_s: float) -> bool:
        return (self.swap.status == 200 and self.swap.version == self.swap.expected
                and self.converged_s is not None and self.converged_s <= goal_s)


def succeeded(record: Record) -> bool:
    return 200 <= record[2] < 300 and not record[4]


def converge(swap: Swap, window_end: float, records: Sequence[Record], *,
             last: bool) -> Convergence:
    """See the module docstring for the definition. The window: requests sent after the
    call returned and answered before the next admin call began (that one may change the
    version again), or sent before the load stopped for the last swap."""
    ok = [r for r in records if succeeded(r)]
    target, returned = swap.version, swap.returned
    in_flight = sum(1 for r in ok if r[0] < returned <= r[1] and r[3] != target)
    window = [r for r in ok if returned <= r[0] < window_end and (last or r[1] < window_end)]
    stale = [r for r in window if r[3] != target]
    if swap.status != 200:
        return Convergence(swap, window_end, in_flight, len(stale), len(window), None, None)
    if not stale:
        return Convergence(swap, window_end, in_flight, 0, len(window), 0.0, None)
    last_arrival = max(r[1] for r in stale)
    seen_after = any(r[0] > last_arrival for r in window)  # all of those are on target
    return Convergence(swap, window_end, in_flight, len(stale), len(window),
                       last_arrival - returned if seen_after else None,
                       max(r[0] for r in stale) - returned)


def analyse(swaps: Sequence[Swap], run: LoadRun) -> list[Convergence]:
    ends = [s.called for s in swaps[1:]] + [run.stop]
    return [converge(s, end, run.records, last=i == len(swaps) - 1)
            for i, (s, end) in enumerate(zip(swaps, ends, strict=True))]


# --------------------------------------------------------------------------- reporting
def failures(run: LoadRun) -> Counter[str]:
    return Counter(r[4] or f"HTTP {r[2]}" for r in run.records if not succeeded(r))


def ms(value: float | None) -> str:
    return "not converged" if value is None else f"{value * 1000:.1f}"


def swap_table(results: Sequence[Convergence], start: float) -> list[str]:
    head = (f"{'#':>2} | {'at s':>5} | {'op':<8} | {'to':>4} | {'status':>6} | "
            f"{'admin ms':>8} | {'in flight':>9} | {'stale':>5} | {'converged ms':>13} | "
            f"{'last stale sent ms':>18}")
    lines = [head, "-" * len(head)]
    for c in results:
        s = c.swap
        to = f"v{s.version}" if s.version == s.expected else f"v{s.version}!"
        last = "-" if c.last_stale_sent_s is None else f"{c.last_stale_sent_s * 1000:.1f}"
        lines.append(f"{s.index:>2} | {s.called - start:>5.1f} | {s.kind:<8} | {to:>4} | "
                     f"{s.status:>6} | {(s.returned - s.called) * 1000:>8.1f} | "
                     f"{c.in_flight:>9} | {c.stale:>5} | {ms(c.converged_s):>13} | {last:>18}")
    return lines


def verdict(run: LoadRun, results: Sequence[Convergence], planned: int,
            goal_s: float) -> dict[str, Any]:
    times = [c.converged_s for c in results if c.converged_s is not None]
    failed = sum(failures(run).values())
    return {"requests": len(run.records), "failed": failed,
            "failed_kinds": dict(failures(run)),
            "converged_max_s": max(times) if times else math.nan,
            "converged_median_s": statistics.median(times) if times else math.nan,
            "requests_pass": failed == 0 and len(run.records) > 0,
            "swaps_pass": len(results) == planned and all(c.passed(goal_s) for c in results)}


def report(args: argparse.Namespace, run: LoadRun, results: Sequence[Convergence],
           outcome: dict[str, Any], cores: dict[str, float]) -> str:
    ok = {True: "PASS", False: "FAIL"}
    seconds = run.stop - run.start
    backend = "PostgreSQL" if args.database_url else "SQLite"
    lines = [f"hotswap_bench: driftloop serve --workers {args.workers} ({backend}); "
             f"{args.concurrency} "
             f"clients in {PROCESSES} Python processes for {seconds:.0f} s; {args.swaps} swaps;"
             f" {os.cpu_count()} CPUs; Python {platform.python_version()}",
             "driftloop settings: " + (", ".join(f"{k}={v}" for k, v in args.overrides.items())
                                       or "the defaults"),
             f"server {cores['server']:.2f} cores, load generator {cores['loadgen']:.2f} cores"
             + (f"; {run.late_processes} generator process(es) started late"
                if run.late_processes else ""), ""]
    lines.append(f"requests: {outcome['requests']} total ({outcome['requests'] / seconds:.1f}"
                 f" req/s), failed {outcome['failed']} (goal 0) {ok[outcome['requests_pass']]}"
                 + (f": {outcome['failed_kinds']}" if outcome["failed"] else ""))
    lines += ["", *swap_table(results, run.start), ""]
    lines.append(f"convergence: max {outcome['converged_max_s'] * 1000:.1f} ms, median "
                 f"{outcome['converged_median_s'] * 1000:.1f} ms, not converged "
                 f"{sum(c.converged_s is None for c in results)} (goal <= {args.goal_ms:.0f}"
                 f" ms for every swap) {ok[outcome['swaps_pass']]}")
    return "\n".join(lines)


def to_json(args: argparse.Namespace, run: LoadRun, results: Sequence[Convergence],
            outcome: dict[str, Any], cores: dict[str, float]) -> dict[str, Any]:
    return {"options": {k: (str(v) if isinstance(v, Path) else v) for k, v in
                        vars(args).items()},
            "workers": args.workers, "seconds": run.stop - run.start, "cores": cores,
            "outcome": outcome,
            "swaps": [asdict(c.swap) | {"at_s": c.swap.called - run.start,
                                        "admin_s": c.swap.returned - c.swap.called,
                                        "in_flight": c.in_flight, "stale": c.stale,
                                        "checked": c.checked, "converged_s": c.converged_s,
                                        "last_stale_sent_s": c.last_stale_sent_s,
                                        "passed": c.passed(args.goal_ms / 1000)}
                       for c in results],
            "cpus": os.cpu_count(), "python": platform.python_version()}


# --------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="10 s and 6 swaps")
    parser.add_argument("--seconds", type=float, help="load duration [30]")
    parser.add_argument("--swaps", type=int, help="promotions + rollbacks [20]")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=WORKERS, help="server workers [2]")
    parser.add_argument("--startup-s", type=float, default=120.0,
                        help="how long the server may take to start [120]")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL URL (an empty schema) [default: SQLite]")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a driftloop setting for the server, e.g. poll_interval=0.25 "
                        "(repeatable; default: none, the server's defaults)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--goal-ms", type=float, default=1000.0,
                        help="the convergence goal per swap, in ms [1000]")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (10.0 if args.quick else 30.0)
    args.swaps = args.swaps or (6 if args.quick else 20)
    if not 1 <= args.swaps <= 200 or not 5 <= args.seconds <= 600 or args.concurrency < 1:
        parser.error("need 1 <= swaps <= 200, 5 <= seconds <= 600 and concurrency >= 1")
    try:
        args.overrides = setting_overrides(args.set)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bodies = predict_bodies(ROWS, SEED)
    done: list[Swap] = []
    with tempfile.TemporaryDirectory(prefix="hotswap-bench-") as folder:
        root = Path(folder)
        c_values = [round(0.05 * (i + 1), 2) for i in range((args.swaps + 1) // 2)]
        settings, candidates = registry_with_candidates(root, c_values, args.database_url)
        swaps = plan(args.swaps, candidates, args.seconds)
        with driftloop_server(settings, args.workers, root, args.overrides,
                              args.startup_s) as server, python_load(
                server.url, bodies, concurrency=args.concurrency, seconds=args.seconds,
                processes=PROCESSES, read_version=True) as load:
            start = load.start()
            cpu = tree_cpu_seconds(server.pid)
            admin = threading.Thread(target=run_swaps, daemon=True, args=(
                server.url, settings.admin_token or "", swaps, start, done))
            admin.start()
            run = load.collect(timeout_s=args.seconds + 120)
            cores = {"server": (tree_cpu_seconds(server.pid) - cpu) / (time.monotonic() - start),
                     "loadgen": run.cpu_seconds / args.seconds}
            admin.join(timeout=60)
    results = analyse(done, run)
    outcome = verdict(run, results, len(swaps), args.goal_ms / 1000)
    print(report(args, run, results, outcome, cores))
    if args.json:
        args.json.write_text(json.dumps(to_json(args, run, results, outcome, cores), indent=2)
                             + "\n")
    return 0 if outcome["requests_pass"] and outcome["swaps_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
