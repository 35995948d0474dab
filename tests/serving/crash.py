"""The crash experiment shared by the durability test and ``benchmarks/durability_bench.py``:
acknowledged predictions and labels under load, SIGKILL mid-load, restart, count the lost."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from dataclasses import dataclass

import httpx
import sqlalchemy as sa
from tests.e2e.processes import start_server
from tests.served_model import example_rows

from driftloop.config import Settings
from driftloop.db import create_engine
from driftloop.db import predictions as table

#: Labels go to predictions answered this many requests earlier (by the same client), as
#: real labels come later than their answers.
LABEL_LAG = 8


@dataclass(frozen=True)
class CrashResult:
    mode: str
    predictions: int  # acknowledged (200) before the kill
    lost_predictions: int  # of those, not in the log after the restart
    labels: int
    lost_labels: int


async def _traffic(url: str, clients: int, stop: threading.Event, prefix: str,
                   acked: list[str], labelled: list[str]) -> None:
    rows = example_rows(64)

    async def client(index: int) -> None:
        mine: list[str] = []
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for i in range(1_000_000):
                if stop.is_set():
                    return
                rid = f"{prefix}-{index}-{i}"
                try:
                    answer = await http.post("/predict", json={
                        "features": rows[i % len(rows)], "request_id": rid})
                    if answer.status_code == 200:
                        acked.append(rid)
                        mine.append(rid)
                    if i % 4 == 0 and len(mine) > LABEL_LAG:  # a label for an older answer
                        old = mine[-LABEL_LAG]
                        label = await http.post("/feedback", json={"request_id": old,
                                                                   "label": i % 2})
                        if label.status_code == 200:
                            labelled.append(old)
                except httpx.HTTPError:
                    return  # the server is gone

    await asyncio.gather(*(client(i) for i in range(clients)))


def crash_once(settings: Settings, mode: str, *, clients: int = 8, predictions: int = 300,
               timeout: float = 120.0) -> CrashResult:
    """Load ``settings``' server in ``mode`` until ``predictions`` are acknowledged (or
    ``timeout`` seconds), SIGKILL it mid-load, start it again (a durable mode replays its
    journal), stop it cleanly, and count."""
    env = {"DRIFTLOOP_LOG_DURABILITY": mode, "DRIFTLOOP_DATABASE_URL": settings.database_url}
    proc, url = start_server(settings, 1, env=env)
    acked: list[str] = []
    labelled: list[str] = []
    stop = threading.Event()
    prefix = f"{mode}-{time.monotonic_ns()}"
    thread = threading.Thread(target=lambda: asyncio.run(
        _traffic(url, clients, stop, prefix, acked, labelled)))
    thread.start()
    deadline = time.monotonic() + timeout
    while len(acked) < predictions and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
    proc.wait(timeout=30)
    stop.set()
    thread.join(timeout=60)
    again, _ = start_server(settings, 1, env=env)
    again.send_signal(signal.SIGTERM)
    again.wait(timeout=60)
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.request_id, table.c.label)
                                .where(table.c.request_id.like(f"{prefix}-%"))).all()
    finally:
        engine.dispose()
    stored = {r.request_id for r in rows}
    with_label = {r.request_id for r in rows if r.label is not None}
    return CrashResult(mode, len(acked), len(set(acked) - stored), len(labelled),
                       len(set(labelled) - with_label))
