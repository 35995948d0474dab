"""Server heartbeats: each serving process writes a row every few seconds.

The CLI reads them to tell the truth about the server: ``driftloop status`` shows whether
one is running (and the age of its last beat) rather than the last state a stopped server
left behind, and ``driftloop retrain`` refuses to queue a run that nothing would drive.
A process that exits cleanly marks its row stopped; one that is killed simply stops
beating, and its row ages past :data:`STALE_AFTER`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from driftloop import db

logger = logging.getLogger(__name__)

#: Seconds between beats.
INTERVAL = 2.0
#: A server whose last beat is older than this is taken for gone (a few missed beats, so a
#: busy database or a long garbage collection does not make it look dead).
STALE_AFTER = timedelta(seconds=15)
#: Rows of servers gone longer than this are deleted (bounded table).
FORGET_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class Beat:
    instance: str
    model_name: str
    started_at: datetime
    beat_at: datetime
    stopped_at: datetime | None
    drives_loop: bool

    def age(self, now: datetime | None = None) -> float:
        """Seconds since the last beat."""
        return ((now or datetime.now(UTC)) - self.beat_at).total_seconds()

    def alive(self, now: datetime | None = None) -> bool:
        return self.stopped_at is None and self.age(now) <= STALE_AFTER.total_seconds()


def beat(engine: Engine, model_name: str, instance: str, *, started_at: datetime,
         drives_loop: bool) -> None:
    """Record that ``instance`` is alive now (an upsert that works on both backends)."""
    table = db.server_heartbeats
    now = datetime.now(UTC)
    with db.transaction(engine) as conn:
        updated = conn.execute(sa.update(table).where(table.c.instance == instance).values(
            beat_at=now, drives_loop=drives_loop, stopped_at=None)).rowcount
        if not updated:
            conn.execute(sa.insert(table).values(
                instance=instance, model_name=model_name, started_at=started_at, beat_at=now,
                drives_loop=drives_loop))
            conn.execute(sa.delete(table).where(table.c.beat_at < now - FORGET_AFTER))


async def beat_forever(engine: Engine, model_name: str, instance: str, *,
                       started_at: datetime, drives_loop: Callable[[], bool]) -> None:
    """Proof of life for the CLI (``driftloop status`` / ``retrain``), every INTERVAL."""
    while True:
        try:
            await asyncio.to_thread(beat, engine, model_name, instance, started_at=started_at,
                                    drives_loop=drives_loop())
        except Exception:
            logger.exception("writing the heartbeat failed; retrying")
        await asyncio.sleep(INTERVAL)


def stopped(engine: Engine, instance: str) -> None:
    """Mark ``instance`` as cleanly stopped."""
    table = db.server_heartbeats
    with db.transaction(engine) as conn:
        conn.execute(sa.update(table).where(table.c.instance == instance)
                     .values(stopped_at=datetime.now(UTC)))


def beats(engine: Engine, model_name: str) -> list[Beat]:
    """Every known server of ``model_name``, the most recent beat first."""
    table = db.server_heartbeats
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.model_name == model_name)
                            .order_by(table.c.beat_at.desc())).all()
    return [Beat(r.instance, r.model_name, db.aware(r.started_at), db.aware(r.beat_at),
                 db.aware(r.stopped_at) if r.stopped_at else None, bool(r.drives_loop))
            for r in rows]
