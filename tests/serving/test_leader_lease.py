"""A drift leader cut off from PostgreSQL stops leading before another replica can take
over (lease with expiry), and a deposed leader's writes are refused (fencing).

The cut is real: the leader's connections go through a TCP proxy that the test
partitions, closing the server's side (PostgreSQL ends the session and frees the advisory
lock at once, the worst case) while the leader's side stays open and silent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from tests.netproxy import Proxy

from driftloop import db
from driftloop.drift import DriftDetector
from driftloop.serving.drift_sync import DriftLeader, LeadershipLostError, read_report

LEASE = 1.5
BASE = DriftDetector.from_reference(pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}),
                                    pane_seconds=10)


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("the lease guards PostgreSQL leaders (SQLite is one host: flock)")
    return db_url


@pytest.fixture
def engines(pg_url: str) -> Iterator[tuple[Engine, Engine, Proxy]]:
    """An engine straight to PostgreSQL, and one through a proxy the test can cut."""
    proxy = Proxy(5432)
    direct = db.create_engine(pg_url)
    cut = db.create_engine(pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"))
    yield direct, cut, proxy
    proxy.close()
    direct.dispose()
    cut.dispose()


def test_a_cut_off_leader_stops_leading_before_another_takes_over(
        engines: tuple[Engine, Engine, Proxy]) -> None:
    direct, cut, proxy = engines
    a = DriftLeader(cut, "churn", "replica-a", BASE, lease_seconds=LEASE)
    b = DriftLeader(direct, "churn", "replica-b", BASE, lease_seconds=LEASE)
    assert a.try_lead() and not b.try_lead()
    a.step()
    assert read_report(direct, "churn")["leader_id"] == "replica-a"
    assert a.try_lead()  # renewed
    proxy.partition()
    cut_at = time.monotonic()
    a_last_leading = cut_at
    b_leads_at: list[float] = []

    def follower() -> None:
        while not b.try_lead():
            time.sleep(0.02)
        b_leads_at.append(time.monotonic())

    thread = threading.Thread(target=follower, daemon=True)
    thread.start()
    while thread.is_alive() and time.monotonic() - cut_at < 30:
        if a.is_leader:  # no I/O: what the loop asks before each of its steps
            a_last_leading = time.monotonic()
        time.sleep(0.005)
    assert b_leads_at, "no replica took over within 30 s"
    assert not a.is_leader
    assert a_last_leading < b_leads_at[0], (
        f"split brain: A still led {a_last_leading - b_leads_at[0]:.3f} s after B took over")
    takeover = b_leads_at[0] - cut_at
    assert takeover < LEASE + 5.0, f"took {takeover:.1f} s to take over"
    assert a.step() == []  # the cut leader judges and writes nothing
    b.step()
    assert read_report(direct, "churn")["leader_id"] == "replica-b"
    # the network heals: A competes again, as a follower
    proxy.heal()
    assert not a.try_lead()
    b.release()


def test_a_deposed_leaders_write_is_refused_by_the_database(
        engines: tuple[Engine, Engine, Proxy]) -> None:
    """What if A's own clock or scheduler lets it believe it still leads? The lease row
    decides: here it passes to a new epoch behind A's back, as after a takeover."""
    direct, _, _ = engines
    a = DriftLeader(direct, "churn", "replica-a", BASE, lease_seconds=30)
    assert a.try_lead() and a.epoch is not None
    a.step()
    with db.transaction(direct) as conn:
        conn.execute(sa.update(db.leader_leases).where(db.leader_leases.c.name == "drift:churn")
                     .values(holder="replica-b", epoch=a.epoch + 1))
        before = read_report(direct, "churn")
    assert a.is_leader  # it has not asked the database yet
    assert a.step() == []  # its write is fenced out...
    assert read_report(direct, "churn") == before  # ...so the report did not change
    assert not a.is_leader  # and it knows now
    with pytest.raises(LeadershipLostError), db.transaction(direct) as conn:
        a.fence(conn)
    a.release()
