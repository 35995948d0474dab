"""Registry and prediction-log latency on SQLite and PostgreSQL, side by side.

What is measured, and why
-------------------------
- ``get_champion``: every serving process resolves the champion; it is one indexed join.
- ``generation``: what serving processes poll (≤ 0.5 s) to notice a promotion.
- ``promote_candidate``: one transaction (row lock, two status updates, alias move,
  history row, audit row, generation bump).
- ``PredictionLog.append``: the server logs every prediction in batches; rows/s for
  500-row batches and for single rows.

The same code runs against an embedded SQLite file (WAL, synchronous=FULL) and the local
PostgreSQL server (a fresh schema, dropped afterwards). Absolute numbers drift on a
shared machine; compare the columns of one run.

    python benchmarks/registry_bench.py [--quick] [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
from sklearn.linear_model import LogisticRegression

from driftloop.data.predictions import PredictionLog, PredictionRecord
from driftloop.registry import ModelRegistry


def timings(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


@contextmanager
def backend(kind: str, postgres: str) -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if kind == "sqlite":
            yield f"sqlite:///{root / 'driftloop.db'}", root
            return
        schema = f"dl_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            host = postgres.removeprefix("postgresql://")
            yield f"postgresql+psycopg://{host}?options=-csearch_path%3D{schema}", root
        finally:
            with psycopg.connect(postgres, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def model(seed: int) -> LogisticRegression:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(50, 4))
    return LogisticRegression().fit(x, x[:, 0] > 0)


def records(n: int) -> list[PredictionRecord]:
    now = datetime.now(UTC)
    return [PredictionRecord(request_id=uuid.uuid4().hex, ts=now, model_name="m",
                             model_version=1, slot="champion",
                             features={"a": 1.0, "b": 2.5, "plan": "pro"}, output=0.7, shadow=None)
            for _ in range(n)]


def measure(url: str, root: Path, quick: bool) -> dict[str, float]:
    reg = ModelRegistry.open(url, artifacts=root / "artifacts")
    promotions = 10 if quick else 40
    for seed in range(promotions):
        reg.push_candidate("m", model(seed))
    reg.promote_candidate("m", 1)
    version = iter(range(2, promotions + 1))
    promote = timings(lambda: reg.promote_candidate("m", next(version)), promotions - 1)
    champion = timings(lambda: reg.get_champion("m"), 300 if quick else 3000)
    generation = timings(lambda: reg.generation("m"), 300 if quick else 3000)
    log = PredictionLog(reg.engine)
    batches = [records(500) for _ in range(4 if quick else 20)]
    batch_s = sum(timings(lambda: log.append(batches.pop()), len(batches)))
    singles = [records(1) for _ in range(100 if quick else 500)]
    single_s = sum(timings(lambda: log.append(singles.pop()), len(singles)))
    return {
        "get_champion median us": statistics.median(champion) * 1e6,
        "get_champion p99 us": float(np.quantile(champion, 0.99)) * 1e6,
        "generation poll median us": statistics.median(generation) * 1e6,
        "promote median ms": statistics.median(promote) * 1e3,
        "promote p99 ms": float(np.quantile(promote, 0.99)) * 1e3,
        "append rows/s (500-row batches)": (4 if quick else 20) * 500 / batch_s,
        "append rows/s (1-row calls)": (100 if quick else 500) / single_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    results = {}
    for kind in ("sqlite", "postgresql"):
        with backend(kind, args.postgres) as (url, root):
            results[kind] = measure(url, root, args.quick)
    print("registry and prediction log, same code on both backends")
    header = f"{'operation':34} {'SQLite':>12} {'PostgreSQL':>12} {'PG / SQLite':>12}"
    print(header)
    print("-" * len(header))
    for key in results["sqlite"]:
        a, b = results["sqlite"][key], results["postgresql"][key]
        print(f"{key:34} {a:12,.1f} {b:12,.1f} {b / a:11.2f}x")


if __name__ == "__main__":
    main()
