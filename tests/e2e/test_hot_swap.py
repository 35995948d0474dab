"""Hot swaps under load: 2 workers, 32 concurrent clients, 10 promotions and rollbacks two
seconds apart — no request fails, and every worker answers with the new champion within
one second of each change.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass

import httpx
import pytest
from tests.e2e.processes import start_server
from tests.served_model import cancer_frame, example_rows, push

from driftloop.config import Settings
from driftloop.registry import ModelRegistry

ADMIN = {"Authorization": "Bearer s3cret"}
CONCURRENCY = 32
SPACING = 2.0  # seconds between the end of one change and the start of the next
CHANGES = 10


@dataclass(frozen=True)
class Answer:
    started: float
    status: int
    version: int | None


async def client(url: str, rows: list[dict[str, object]], stop: asyncio.Event,
                 answers: list[Answer]) -> None:
    limits = httpx.Limits(max_keepalive_connections=0)  # new connections spread over workers
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as http:
        i = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = await http.post("/predict", json={"features": rows[i % len(rows)]})
                version = response.json().get("model_version") if response.is_success else None
                answers.append(Answer(started, response.status_code, version))
            except httpx.HTTPError:
                answers.append(Answer(started, 0, None))
            i += 1


async def operator(url: str, versions: list[int],
                   stop: asyncio.Event) -> list[tuple[float, float, int]]:
    """Alternately promote the next candidate and roll back; for each change: when the
    admin call started, when it returned, and the champion it set. The load stops 1.5 s
    after the last change, so every change is followed by a full second of traffic."""
    changes = []
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=ADMIN) as http:
        for step in range(CHANGES):
            await asyncio.sleep(SPACING)
            started = time.monotonic()
            if step % 2 == 0:
                response = await http.post(f"/api/models/{versions[step // 2]}/promote")
            else:
                response = await http.post("/api/rollback")
            assert response.status_code == 200, response.text
            changes.append((started, time.monotonic(), response.json()["champion"]["version"]))
    await asyncio.sleep(1.5)
    stop.set()
    return changes


@pytest.mark.slow
def test_promotions_under_load_drop_nothing_and_converge_within_a_second(
    served_settings: Settings,
) -> None:
    reg = ModelRegistry.open(served_settings.database_url, artifacts=served_settings.data_dir)
    champion = reg.get_champion("cancer")
    assert champion is not None
    candidates = [push(reg, cancer_frame(), champion.dataset_id or "",
                       champion.dataset_sha256 or "", c=0.05 * (k + 1))
                  for k in range(CHANGES // 2)]
    reg.engine.dispose()
    proc, url = start_server(served_settings, 2)
    try:
        rows = example_rows(200)
        answers: list[Answer] = []

        async def main() -> list[tuple[float, float, int]]:
            stop = asyncio.Event()
            clients = [client(url, rows, stop, answers) for _ in range(CONCURRENCY)]
            *_, changes = await asyncio.gather(*clients, operator(url, candidates, stop))
            return changes  # type: ignore[no-any-return]

        changes = asyncio.run(main())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert len(answers) > 200
    assert [a for a in answers if a.status != 200] == []
    # Requests that start from one second after a change returned until the next change
    # begins must all be answered by the new champion, whichever worker they reach.
    for k, (_, returned, version) in enumerate(changes):
        until = changes[k + 1][0] if k + 1 < len(changes) else float("inf")
        late = [a for a in answers if returned + 1.0 <= a.started < until]
        assert late and all(a.version == version for a in late), (k, version)
