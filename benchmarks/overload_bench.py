"""After a batch overload: is the memory given back, and did refused batches leave rows?

What is measured, and why
-------------------------
``driftloop serve`` (1 worker, SQLite, defaults) is idle; its resident memory (VmRSS) is
read. Then ``--clients`` clients each send 1,000-row ``/predict/batch`` requests back to back
for ``--seconds``: far more rows than the queue admits, so most are refused (503). The
clients stop, the server is given ``--settle`` seconds, and VmRSS is read again. Reported:
requests answered 200 and 503, the rows those 200s carried, the rows in the prediction log
after a clean stop (a refused batch must add none: logged == rows of the 200s), and the
memory before, at the end of the load, and after settling.

Running it
----------
From the repository root::

    .venv/bin/python benchmarks/overload_bench.py      # ~1 minute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from driftloop.data.predictions import PredictionLog
from driftloop.db import create_engine
from loadgen import driftloop_server, registry_with_candidates, stop

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests/ is a namespace package at the repository root
    sys.path.insert(0, str(ROOT))
from tests.served_model import example_rows  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def overload(url: str, clients: int, seconds: float) -> tuple[int, int]:
    body = json.dumps({"rows": [{"features": r} for r in example_rows(1000)]}).encode()
    headers = {"content-type": "application/json"}
    counts = {200: 0, 503: 0}
    deadline = time.monotonic() + seconds

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while time.monotonic() < deadline:
                response = await http.post("/predict/batch", content=body, headers=headers)
                counts[response.status_code] = counts.get(response.status_code, 0) + 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return counts[200], counts[503]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=10.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="overload-") as folder:
        settings, _ = registry_with_candidates(Path(folder), [])
        with driftloop_server(settings, 1, Path(folder)) as server:
            before = rss_mb(server.pid)
            ok, refused = asyncio.run(overload(server.url, args.clients, args.seconds))
            peak = rss_mb(server.pid)
            time.sleep(args.settle)
            after = rss_mb(server.pid)
            stop(server.process)
        logged = PredictionLog(create_engine(settings.database_url)).count()
    print(f"overload: {args.clients} clients x 1,000-row batches for {args.seconds:.0f} s")
    print(f"answered 200: {ok} ({ok * 1000} rows); 503: {refused}; rows logged: {logged}")
    print(f"VmRSS MB: before {before:.0f}, end of load {peak:.0f}, after {args.settle:.0f} s "
          f"{after:.0f} (+{after - before:.0f})")
    return 0 if logged == ok * 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
