"""What durability costs: the prediction log's three modes side by side, latency and loss.

What is measured, and why
-------------------------
The prediction log is written in batches off the request path; ``log_durability`` says
what happens before a prediction is acknowledged:

- ``buffered``: nothing; a SIGKILL loses what the observation queue and the writer's
  buffer held (up to ``max_delay``, 1 s, of answers);
- ``journal``: one ``write()`` of the record to a local append-only file, which survives a
  SIGKILL (not a power cut);
- ``fsync``: the same plus a group-committed ``fsync``, which survives a power cut.

For each mode, in turn and twice (A B C A B C, so a change in the machine's load does not
favour one mode), ``driftloop serve`` (1 worker, SQLite, every other setting at its
default) gets ``--concurrency`` closed-loop clients (the Python generator of
``loadgen.py``) for ``--seconds``; reported: requests per second, p50 and p99 latency, the
median of the two rounds. Then the crash experiment of ``tests/serving/crash.py`` runs once
per mode: 8 clients send predictions and labels (a label for the answer 8 requests
earlier) until ``--crash-predictions`` are acknowledged, the server is SIGKILLed mid-load,
restarted (the journal is replayed) and stopped; reported: acknowledged predictions and
labels, and how many of them are not in the log.

Running it
----------
From the repository root::

    .venv/bin/python benchmarks/durability_bench.py              # ~6 minutes
    .venv/bin/python benchmarks/durability_bench.py --quick      # ~3 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from loadgen import (
    driftloop_server,
    percentile,
    predict_bodies,
    python_load,
    registry_with_candidates,
)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests/ is a namespace package at the repository root
    sys.path.insert(0, str(ROOT))
from tests.serving.crash import crash_once  # noqa: E402

from driftloop.data.journal import PredictionJournal  # noqa: E402
from driftloop.data.predictions import PredictionRecord  # noqa: E402

MODES = ("buffered", "journal", "fsync")


def journal_cost(folder: Path, fsync: bool, tasks: int = 16, each: int = 500) -> float:
    """Microseconds one prediction spends in :meth:`PredictionJournal.commit`, with
    ``tasks`` concurrent requests (the journal alone, without a server around it)."""
    journal = PredictionJournal(folder, fsync=fsync)
    now = datetime.now(UTC)
    record = PredictionRecord("r", now, "m", 1, "champion",
                              {"mean radius": 14.1, "size": "large"}, {"prediction": 1})

    async def requester(task: int) -> None:
        for i in range(each):
            await journal.commit([dataclasses.replace(record, request_id=f"{task}-{i}")])

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(requester(t) for t in range(tasks)))
        return time.perf_counter() - started

    seconds = asyncio.run(run())
    journal.close()
    return seconds / (tasks * each) * 1e6


def latency_round(root: Path, mode: str, concurrency: int, seconds: float
                  ) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, failed) of one mode under load."""
    settings, _ = registry_with_candidates(root / f"{mode}-{len(list(root.iterdir()))}", [])
    with driftloop_server(settings, 1, root, {"DRIFTLOOP_LOG_DURABILITY": mode}) as server, \
            python_load(server.url, predict_bodies(512, seed=1), concurrency=concurrency,
                        seconds=seconds, processes=2, read_version=False) as load:
        load.start()
        run = load.collect(timeout_s=seconds + 120)
    ok = [end - start for start, end, status, _, _ in run.records if 200 <= status < 300]
    failed = len(run.records) - len(ok)
    return (len(ok) / seconds, percentile(ok, 50) * 1000, percentile(ok, 99) * 1000, failed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="one round of 8 s")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--crash-predictions", type=int, default=500)
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else 2
    seconds = 8.0 if args.quick else args.seconds
    with tempfile.TemporaryDirectory(prefix="durability-") as folder:
        root = Path(folder)
        print("the journal alone: 16 concurrent requests, 8,000 predictions, wall time per "
              "prediction (throughput cost; a request waits at most one group's fsync)")
        for name, fsync in (("journal", False), ("fsync", True)):
            cost = journal_cost(root / f"cost-{name}", fsync)
            print(f"{name:<10}{cost:>8.1f} µs", flush=True)
        results: dict[str, list[tuple[float, float, float, int]]] = {m: [] for m in MODES}
        for _ in range(rounds):
            for mode in MODES:
                results[mode].append(latency_round(root, mode, args.concurrency, seconds))
        base = statistics.median(r[1] for r in results["buffered"])
        print(f"\nlatency: {args.concurrency} closed-loop clients, {seconds:.0f} s, median of "
              f"{rounds} round(s), 1 worker, SQLite")
        print(f"{'mode':<10}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'p50 vs buffered':>17}"
              f"{'failed':>8}")
        for mode in MODES:
            rps, p50, p99 = (statistics.median(r[i] for r in results[mode]) for i in range(3))
            failed = sum(r[3] for r in results[mode])
            print(f"{mode:<10}{rps:>8.0f}{p50:>9.1f}{p99:>9.1f}{p50 / base:>16.2f}x"
                  f"{failed:>8}", flush=True)
        crashes = {}
        for mode in MODES:
            settings, _ = registry_with_candidates(root / f"crash-{mode}", [])
            crashes[mode] = crash_once(settings, mode, predictions=args.crash_predictions)
    print("\nSIGKILL under load, then restart: acknowledged and lost")
    print(f"{'mode':<10}{'predictions':>12}{'lost':>6}{'labels':>8}{'lost':>6}")
    for mode, crash in crashes.items():
        print(f"{mode:<10}{crash.predictions:>12}{crash.lost_predictions:>6}"
              f"{crash.labels:>8}{crash.lost_labels:>6}")
    lost = crashes["journal"].lost_predictions + crashes["fsync"].lost_predictions
    return 0 if lost == 0 and all(c.lost_labels == 0 for c in crashes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
