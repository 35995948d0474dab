"""Drift over all the traffic of a multi-process model server: workers ship, one leader judges.

Each uvicorn worker sees only its share of the requests and keeps its own
:class:`~driftloop.drift.DriftDetector` with time-based panes (``pane_seconds``), so the
workers' panes line up by time bucket. A :class:`WindowShipper` upserts the worker's
window (:meth:`DriftDetector.window_bytes`: exact counts, deflated; 1.3-1.9 bytes per
feature value in the window, 0.47 MB for 25 continuous features x 10k events) into
``drift_windows``. One :class:`DriftLeader` per model merges the fresh windows into a
detector of its own, evaluates the alarm policy once per newly closed pane and stores the
merged report in ``drift_reports``, where :func:`read_report` serves it to every process.

Worker loop (say every second, and after each pane close)::

    shipper.ship()
    if leader.try_lead():
        for event in leader.step():
            ...  # the only alarm for the whole fleet

Leadership is a lock that the operating system or the database releases when its holder
dies, plus, on PostgreSQL, a **lease with expiry** that keeps a leader that lost its
database from acting on after another has taken over:

- **PostgreSQL**: a session-level ``pg_try_advisory_lock`` on a connection the leader
  keeps checked out for as long as it leads, and a row in ``leader_leases`` that the
  leader renews through that connection at every poll (``expires_at`` =
  ``clock_timestamp() + lease_seconds`` by the database's clock) and that carries an
  ``epoch``, one more for every new holder. A leader counts itself the leader only until
  ``lease_seconds * LEASE_SAFETY`` after it *sent* its last successful renewal, by its
  own monotonic clock: that moment comes before the lease's ``expires_at``, so a leader
  cut off from the database (a partition that swallows packets without an error, a hung
  connection) stops leading, and :meth:`DriftLeader.is_leader` turns False for the loop,
  before anyone else may take the lease. A newcomer needs the advisory lock *and* an
  expired (or cleanly released) lease. Every write the leader makes checks its epoch in
  the same transaction (``fence``): a deposed leader's late write is refused by the
  database, not by the deposed leader's good will.
  A leader process that dies (even SIGKILL) frees the advisory lock at once; its lease
  lapses within ``lease_seconds``. A leader *host* that vanishes is noticed by the
  server through the TCP keepalive / user timeout set on that session (about 10-15 s).
- **SQLite**: an exclusive ``flock`` on a lock file next to the database, released by the
  kernel when the holder's file descriptor closes, which process death does. (One host:
  no partition to survive, so no lease.)

**Failover time** after a leader dies is therefore at most ``lease_seconds`` plus the
followers' polling interval on PostgreSQL (at once after a clean release), and the
polling interval on SQLite.

Clocks: pane ids and the freshness of ``drift_windows`` rows both come from the hosts'
clocks, so hosts sharing one PostgreSQL must keep them in step (NTP) to well within
``pane_seconds`` and ``stale_after``.

Create shippers and leaders *after* forking worker processes: a lock file descriptor or a
database connection inherited across ``fork()`` is shared with the parent.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import os
import re
import select
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from driftloop import db
from driftloop.drift import DriftDetector, DriftEvent, DriftReport
from driftloop.drift.errors import (
    DriftFormatError,
    DriftFormatVersionError,
    IncompatibleDetectorError,
)
from driftloop.drift.state import WindowDelta, load_window
from driftloop.errors import ConflictError

logger = logging.getLogger(__name__)

#: Server-side TCP settings for the leader's PostgreSQL session (all user-settable): an
#: idle session is probed after 5 s, every 2 s, and dropped after 3 missed probes; data
#: left unacknowledged for 10 s drops it too. Without them a leader host that loses power
#: would keep the advisory lock until the kernel's defaults (hours) gave up on it.
_PG_SESSION_SETTINGS = (
    ("tcp_keepalives_idle", "5"),
    ("tcp_keepalives_interval", "2"),
    ("tcp_keepalives_count", "3"),
    ("tcp_user_timeout", "10000"),
)


#: A leader stops counting itself the leader this share of ``lease_seconds`` after it sent
#: its last renewal, leaving a margin for the step or loop tick it may be in the middle of.
LEASE_SAFETY = 0.8


class LeadershipLostError(ConflictError, RuntimeError):
    """The lease this leader held has another holder (or expired): its write is refused."""


def advisory_lock_key(model_name: str, schema: str = "") -> int:
    """The PostgreSQL advisory lock key that elects ``model_name``'s drift leader.

    A stable 63-bit hash (positive, so it reads the same as ``bigint`` everywhere) of the
    schema and the model name: advisory locks are per *database*, and two deployments in
    different schemas of one database must not elect a single leader between them.
    """
    digest = hashlib.sha256(f"driftloop.drift_leader\0{schema}\0{model_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def default_lock_path(engine: Engine, model_name: str) -> Path:
    """``<db file>.leader.<model>-<hash>.lock``: one lock file per model (``flock`` locks a
    whole file, and each model needs its own leader). The name keeps the model's
    filesystem-safe characters for people reading a directory listing; the hash keeps
    names that differ only in other characters apart."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ValueError(
            f"cannot place the leader lock file next to SQLite database {database!r}: "
            "pass DriftLeader(..., lock_path=...) with a file path that every worker shares"
        )
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)[:64]
    tag = hashlib.sha256(model_name.encode()).hexdigest()[:8]
    return Path(database).resolve().with_name(f"{Path(database).name}.leader.{safe}-{tag}.lock")


class WindowShipper:
    """Ships one worker's drift window to the database for the leader to merge.

    ``worker_id`` is the row's primary key in ``drift_windows`` and must be unique per
    running worker *and* model (e.g. ``f"{hostname}:{pid}:{model_name}"``): the table keys
    rows by worker alone, so a worker serving two models needs two ids.
    """

    def __init__(
        self,
        engine: Engine,
        model_name: str,
        worker_id: str,
        detector: DriftDetector,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _require_time_panes(detector)
        _check_dialect(engine)
        self.engine = engine
        self.model_name = model_name
        self.worker_id = worker_id
        self.detector = detector
        #: Stamps ``updated_at`` (the leader's staleness test compares it with its clock).
        self.clock = clock

    def ship(self, *, tick: bool = True) -> None:
        """Upsert this worker's :meth:`~DriftDetector.window_bytes` in one transaction.

        With ``tick`` (the default) the detector first closes a pane whose time is up, so a
        worker that has had no request since the pane boundary still hands its pane over
        closed instead of holding the leader's evaluation back (see
        :meth:`DriftLeader.step`). The alarms that tick may return are the worker's own,
        judged on its share of the traffic only, and are dropped: the leader's are the
        ones that count.

        Call it from the thread that feeds the detector (or under the lock that guards
        it): reading a window while another thread observes into it is not safe.
        """
        if tick:
            self.detector.tick()
        data = self.detector.window_bytes()
        now = _utc(self.clock())
        table = db.drift_windows
        stmt = _insert(self.engine, table).values(
            worker_id=self.worker_id, model_name=self.model_name, updated_at=now, window=data)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.worker_id],
            set_={"updated_at": now, "window": data},
            where=table.c.model_name == self.model_name,
        ).returning(table.c.worker_id)  # no row back: the row belongs to another model
        with db.transaction(self.engine) as conn:
            if conn.execute(stmt).first() is None:
                owner = conn.execute(sa.select(table.c.model_name)
                                     .where(table.c.worker_id == self.worker_id)).scalar()
                raise ValueError(
                    f"worker id {self.worker_id!r} already ships the drift window of model "
                    f"{owner!r}: give each (worker, model) pair its own worker_id, e.g. "
                    f"'{self.worker_id}:{self.model_name}'"
                )

    def withdraw(self) -> None:
        """Delete this worker's row: a clean shutdown, so the leader stops merging the
        window at once rather than after ``stale_after`` seconds."""
        table = db.drift_windows
        with db.transaction(self.engine) as conn:
            conn.execute(sa.delete(table).where(table.c.worker_id == self.worker_id,
                                                table.c.model_name == self.model_name))


class DriftLeader:
    """Merges every worker's window and runs the alarm policy, in one process at a time.

    ``base`` is the serving reference: a :class:`DriftDetector` (copied, never cleared in
    place, so a worker may pass its own live detector) or the bytes of
    :meth:`DriftDetector.to_bytes`. Its policy, window settings and alarm streak carry over;
    the copy is kept across steps because the alarm streak lives in it.

    ``lock_path`` (SQLite only) overrides :func:`default_lock_path`; every process must
    name the same file. ``stale_after``: worker rows not updated for this many seconds
    (by ``clock``) are left out of the merge. ``clock`` also stamps the stored report.

    After a failover the new leader's alarm streak starts from ``base``'s: an alarm in
    progress may come up to ``consecutive`` panes later, and one already raised for a
    drift that persists may be raised again once. Consumers of alarms should tolerate a
    repeat (e.g. skip retraining when one is already running for the model).

    Not thread-safe: call one leader's methods from one thread (or one event loop, through
    ``asyncio.to_thread``).
    """

    def __init__(
        self,
        engine: Engine,
        model_name: str,
        leader_id: str,
        base: DriftDetector | bytes,
        *,
        lock_path: str | os.PathLike[str] | None = None,
        stale_after: float = 30.0,
        lease_seconds: float = 3.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not stale_after > 0:
            raise ValueError(f"stale_after must be > 0 seconds, got {stale_after}")
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be > 0 seconds, got {lease_seconds}")
        self._dialect = _check_dialect(engine)
        if isinstance(base, DriftDetector):
            detector = DriftDetector.from_bytes(base.to_bytes(), policy=base.policy,
                                                clock=base.clock)
        else:
            detector = DriftDetector.from_bytes(base, clock=clock)
        _require_time_panes(detector)
        self.engine = engine
        self.model_name = model_name
        self.leader_id = leader_id
        self.stale_after = float(stale_after)
        self.lease_seconds = float(lease_seconds)
        self.clock = clock
        self._detector = detector
        self._lock_path: Path | None = None
        if self._dialect == "sqlite":
            self._lock_path = (Path(lock_path) if lock_path is not None
                               else default_lock_path(engine, model_name))
        self._fd: int | None = None  # SQLite: the flocked lock file
        self._conn: Connection | None = None  # PostgreSQL: the session holding the lock
        self._key: int | None = None
        self._epoch: int | None = None  # PostgreSQL: the lease's fencing token while held
        self._deadline = 0.0  # time.monotonic() after which this leader stops leading
        self._waiting_logged = False
        self._evaluated_pane: int | None = None
        self._newer: dict[str, int] = {}
        self._warned: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ leadership
    @property
    def is_leader(self) -> bool:
        """Whether this object holds the leadership lock right now.

        On PostgreSQL it looks at the dedicated connection without a round trip unless
        the server has sent something (a terminated session shows up as a readable
        socket); a connection found dead gives the leadership up. A silently partitioned
        network is only noticed by the next :meth:`try_lead` / :meth:`step` ping.
        """
        if self._dialect == "sqlite":
            return self._fd is not None
        return (self._conn is not None and self._epoch is not None
                and time.monotonic() < self._deadline and self._pg_alive(ping=False))

    @property
    def epoch(self) -> int | None:
        """The fencing token of the lease this leader holds (PostgreSQL), else ``None``."""
        return self._epoch if self.is_leader else None

    @property
    def lock_path(self) -> Path | None:
        """The SQLite lock file (``None`` on PostgreSQL)."""
        return self._lock_path

    def try_lead(self) -> bool:
        """Become the leader if nobody is; True while this object leads. Idempotent and
        cheap: call it every poll. Failover takes about one polling interval.

        On PostgreSQL a leader pings its dedicated connection; if that connection died
        (server restart, network, ``pg_terminate_backend``) the leadership is dropped and
        competed for again on a fresh connection. A database that cannot be reached
        means "not the leader" (logged), not an exception, so a polling loop keeps going.
        """
        if self._dialect == "sqlite":
            return self._fd is not None or self._acquire_flock()
        try:
            if self._conn is not None and self._pg_alive(ping=True):
                return self.is_leader or self._take_lease()
            return self._acquire_pg() and self._take_lease()
        except sa.exc.OperationalError as exc:
            logger.warning("drift leader %r for %r: cannot reach PostgreSQL to compete "
                           "for leadership: %s", self.leader_id, self.model_name, exc)
            return False

    def release(self) -> None:
        """Give the leadership up (clean shutdown); another process takes over at its next
        poll. Safe to call when not leading."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
            # The lock file stays: deleting it while another process has it open lets two
            # processes lock two different files of the same name.
        if self._conn is not None:
            conn, self._conn = self._conn, None
            epoch, self._epoch = self._epoch, None
            try:
                if epoch is not None:  # lapse the lease now: the next leader need not wait
                    conn.execute(sa.text(
                        "UPDATE leader_leases SET expires_at = clock_timestamp() "
                        "WHERE name = :name AND holder = :holder AND epoch = :epoch"),
                        {"name": self._lease_name, "holder": self.leader_id, "epoch": epoch})
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            except sa.exc.DBAPIError:
                pass  # a dead session holds no lock
            finally:
                # Never back into the pool: a session lock survives the pool's reset, and
                # a stray one would make this process the leader forever.
                conn.invalidate()
                conn.close()

    def __enter__(self) -> DriftLeader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _acquire_flock(self) -> bool:
        assert self._lock_path is not None
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def _acquire_pg(self) -> bool:
        conn = self.engine.connect()
        try:
            # Autocommit: a connection held for hours must not sit idle in a transaction
            # (it would pin old row versions and trip idle-in-transaction timeouts); the
            # advisory lock is session-level and does not need one.
            conn.execution_options(isolation_level="AUTOCOMMIT")
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar() or ""
            key = advisory_lock_key(self.model_name, schema)
            acquired = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                         {"key": key}).scalar_one())
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        if not acquired:
            conn.close()  # holds no lock: fine to return to the pool
            return False
        for name, value in _PG_SESSION_SETTINGS:
            try:
                conn.execute(sa.text("SELECT set_config(:name, :value, false)"),
                             {"name": name, "value": value})
            except sa.exc.DBAPIError as exc:  # e.g. tcp_user_timeout before PG 12
                logger.info("drift leader: cannot set %s on PostgreSQL: %s", name, exc)
        self._conn, self._key = conn, key
        logger.info("drift leader %r now leads model %r", self.leader_id, self.model_name)
        return True

    @property
    def _lease_name(self) -> str:
        return f"drift:{self.model_name}"

    def _take_lease(self) -> bool:
        """With the advisory lock held: take the lease once the last holder's has lapsed
        (or it is this leader's own, from a session it lost), with a new epoch."""
        assert self._conn is not None
        started = time.monotonic()
        epoch = self._conn.execute(sa.text(
            "INSERT INTO leader_leases AS l (name, holder, epoch, expires_at) "
            "VALUES (:name, :holder, 1, clock_timestamp() + make_interval(secs => :ttl)) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "epoch = l.epoch + 1, expires_at = excluded.expires_at "
            "WHERE l.expires_at <= clock_timestamp() "
            "OR (l.holder = :holder AND l.epoch = :mine) RETURNING epoch"),
            {"name": self._lease_name, "holder": self.leader_id, "ttl": self.lease_seconds,
             "mine": self._epoch if self._epoch is not None else -1}).scalar()
        if epoch is None:
            if not self._waiting_logged:
                self._waiting_logged = True
                logger.info("drift leader %r for %r: waiting for the last leader's lease "
                            "to lapse (at most %.1f s)", self.leader_id, self.model_name,
                            self.lease_seconds)
            return False
        self._epoch, self._deadline = int(epoch), started + self.lease_seconds * LEASE_SAFETY
        self._waiting_logged = False
        logger.info("drift leader %r now leads model %r (lease epoch %d)", self.leader_id,
                    self.model_name, self._epoch)
        return True

    def _renew(self, conn: Connection) -> None:
        """Extend the lease held; LeadershipLostError when it has another holder."""
        started = time.monotonic()
        renewed = conn.execute(sa.text(
            "UPDATE leader_leases SET expires_at = clock_timestamp() + make_interval(secs => "
            ":ttl) WHERE name = :name AND holder = :holder AND epoch = :epoch "
            "AND expires_at > clock_timestamp() RETURNING epoch"),
            {"name": self._lease_name, "holder": self.leader_id, "epoch": self._epoch,
             "ttl": self.lease_seconds}).first()
        if renewed is None:
            raise LeadershipLostError(f"the lease of epoch {self._epoch} lapsed or was taken")
        self._deadline = started + self.lease_seconds * LEASE_SAFETY

    def fence(self, conn: Connection) -> None:
        """Inside a write transaction on ``conn``: raise :class:`LeadershipLostError`
        unless this leader still holds its lease (same epoch, not expired, by the
        database's clock). The row stays share-locked until the transaction ends, so no
        takeover can commit in between: the write lands under this epoch or not at all."""
        if self._dialect == "sqlite":
            if self._fd is None:
                raise LeadershipLostError(f"{self.leader_id!r} does not lead")
            return
        held = conn.execute(sa.text(
            "SELECT epoch FROM leader_leases WHERE name = :name AND holder = :holder "
            "AND epoch = :epoch AND expires_at > clock_timestamp() FOR SHARE"),
            {"name": self._lease_name, "holder": self.leader_id,
             "epoch": self._epoch if self._epoch is not None else -1}).first()
        if held is None:
            raise LeadershipLostError(
                f"drift leader {self.leader_id!r} no longer holds the lease of "
                f"{self.model_name!r} (epoch {self._epoch}): write refused")

    def _pg_alive(self, *, ping: bool) -> bool:
        """Whether the dedicated session is usable; gives the leadership up when it is not."""
        conn = self._conn
        assert conn is not None
        try:
            if conn.closed or conn.invalidated:
                raise ConnectionError("the leader's connection was closed")
            raw: Any = conn.connection.dbapi_connection
            if raw is None or raw.closed or raw.broken:
                raise ConnectionError("the leader's connection is broken")
            if not ping:  # something to read on an idle session: an error, or its end
                ping = bool(select.select([raw.fileno()], [], [], 0)[0])
            if ping and self._epoch is not None:
                self._renew(conn)  # the renewal is the ping
            elif ping:
                conn.execute(sa.text("SELECT 1"))
            return True
        except LeadershipLostError as exc:
            logger.warning("drift leader %r lost the lease of %r (%s): leadership given up",
                           self.leader_id, self.model_name, exc)
            self.release()
            return False
        except (sa.exc.DBAPIError, ConnectionError, OSError, ValueError) as exc:
            logger.warning("drift leader %r lost its PostgreSQL session (%s): leadership of "
                           "%r given up; try_lead() competes again", self.leader_id, exc,
                           self.model_name)
            self._conn = None
            try:
                conn.invalidate()
                conn.close()
            except sa.exc.SQLAlchemyError:
                pass
            return False

    # ------------------------------------------------------------------ merging
    @property
    def detector(self) -> DriftDetector:
        """The leader's own detector: the merged window of the last step, and the alarm
        streak. Read it; do not feed it (each step refills it from the workers)."""
        return self._detector

    @property
    def evaluated_pane(self) -> int | None:
        """The newest pane id the policy has evaluated, ``None`` before the first."""
        return self._evaluated_pane

    @property
    def newer_format_workers(self) -> dict[str, int]:
        """Worker id → format version of the windows the last stored step left out because
        a newer driftloop wrote them: while not empty, this leader runs older code than
        part of the fleet and the drift view is blind to that part's traffic."""
        return dict(self._newer)

    def step(self) -> list[DriftEvent]:
        """One leader round; returns the alarms raised (``[]`` when not the leader).

        1. Clear the detector's window and merge every row of this model updated within
           ``stale_after`` seconds. Older rows belong to dead or hung workers: they are
           ignored, not deleted (a worker that comes back simply counts again; a clean
           shutdown calls :meth:`WindowShipper.withdraw`). Rows that do not fit the
           reference (a worker still on an old champion, a corrupt blob) are skipped,
           logged once, and listed in the report's ``rejected_workers``; a window in a
           newer format is an error log naming both versions and an entry in
           ``newer_format_workers``.
        2. Evaluate the policy once when the merged window's newest closed pane is one it
           has not evaluated yet, so the alarm streak counts panes, not steps. When
           several panes closed since the last step, only the newest is evaluated. The
           evaluation waits until every fresh worker has closed that pane too (its open
           pane is a later one), so that a pane is never judged on part of its traffic;
           a worker that lags more than ``stale_after`` behind the pane's end stops
           holding it back.
        3. Upsert the merged report into ``drift_reports``: the evaluation's report, or
           between evaluations a fresh :meth:`DriftDetector.report` of the merged window
           (which leaves the alarm streak alone).
        """
        if not self._still_leading():
            return []
        now = self.clock()
        table = db.drift_windows
        query = (sa.select(table.c.worker_id, table.c.window)
                 .where(table.c.model_name == self.model_name,
                        table.c.updated_at >= _utc(now - self.stale_after))
                 .order_by(table.c.worker_id))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        det = self._detector
        det.clear_window()
        merged: list[tuple[str, WindowDelta]] = []
        rejected: list[str] = []
        newer: dict[str, int] = {}
        for worker_id, blob in rows:
            try:
                delta = load_window(det, bytes(blob))
            except (DriftFormatError, IncompatibleDetectorError) as exc:
                rejected.append(worker_id)
                if isinstance(exc, DriftFormatVersionError) and exc.newer:
                    newer[worker_id] = exc.found
                self._warn_once(worker_id, exc)
                continue
            det.merge_window(delta)
            merged.append((worker_id, delta))

        events: list[DriftEvent] = []
        report: DriftReport | None = None
        newest = max((p.id for _, d in merged for p in d.closed), default=None)
        if (newest is not None
                and (self._evaluated_pane is None or newest > self._evaluated_pane)
                and self._pane_settled(newest, [d for _, d in merged], now)):
            events = det.evaluate(newest)
            self._evaluated_pane = newest
            report = det.last_report
        if report is None:
            report = det.report()
        if not self._store(report, [w for w, _ in merged], rejected, newer, now):
            return []  # deposed meanwhile: the new leader raises the alarms
        self._newer = newer
        return events

    def _still_leading(self) -> bool:
        if self._dialect == "sqlite":
            return self._fd is not None
        return self.is_leader  # the lease's local deadline; _store's fence asks the database

    def _pane_settled(self, pane_id: int, deltas: Sequence[WindowDelta], now: float) -> bool:
        """Every fresh worker has moved past ``pane_id``, or it ended ``stale_after`` ago.

        A worker that never observed nor ticked (``first_pane`` is None) has no pane to
        wait for.
        """
        if all(d.open_id > pane_id for d in deltas if d.first_pane is not None):
            return True
        assert self._detector.pane_seconds is not None
        return now >= (pane_id + 1) * self._detector.pane_seconds + self.stale_after

    def _store(self, report: DriftReport, workers: list[str], rejected: list[str],
               newer: dict[str, int], now: float) -> bool:
        """Upsert the merged report under this leader's lease; False when fenced out."""
        payload = _json_safe({
            **report.to_dict(),
            "workers": len(workers),
            "worker_ids": workers,
            "rejected_workers": rejected,
            "newer_format_workers": newer,
            "leader_id": self.leader_id,
            "evaluated_pane_id": self._evaluated_pane,
            "updated_at": now,
        })
        table = db.drift_reports
        stamp = _utc(now)
        stmt = _insert(self.engine, table).values(
            model_name=self.model_name, updated_at=stamp, leader_id=self.leader_id,
            report=payload)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.model_name],
            set_={"updated_at": stamp, "leader_id": self.leader_id, "report": payload},
        )
        try:
            with db.transaction(self.engine) as conn:
                self.fence(conn)
                conn.execute(stmt)
        except LeadershipLostError as exc:
            logger.warning("%s", exc)
            self.release()
            return False
        return True

    def _warn_once(self, worker_id: str, exc: Exception) -> None:
        """Log why a worker's window is left out, once per worker and reason. A window in a
        newer format (an error) means this leader runs older code than that worker:
        the fleet's drift view is blind to its traffic until the leader is upgraded too."""
        key = (worker_id, str(exc))
        if key in self._warned:
            return
        self._warned.add(key)
        if isinstance(exc, DriftFormatVersionError) and exc.newer:
            logger.error("drift leader %r for %r: worker %r ships drift windows in format "
                         "version %d, newer than the %s this process reads: its traffic is "
                         "left out of the drift view until this process runs the newer "
                         "driftloop too (finish the rolling upgrade)", self.leader_id,
                         self.model_name, worker_id, exc.found,
                         "/".join(map(str, exc.readable)))
            return
        logger.warning("drift leader for %r: skipping worker %r's window: %s (the worker "
                       "and the leader must share the reference and window settings)",
                       self.model_name, worker_id, exc)


def read_report(engine: Engine, model_name: str) -> dict[str, Any] | None:
    """The latest merged drift report of ``model_name`` as the leader stored it, or
    ``None`` before any leader has stepped. Works in any process, leader or not.

    The dict is :meth:`DriftReport.to_dict` plus ``workers`` (windows merged),
    ``worker_ids``, ``rejected_workers`` (windows left out), ``newer_format_workers``
    (worker id → format version, for those left out because a newer driftloop wrote them:
    the leader must be upgraded), ``leader_id``, ``evaluated_pane_id`` (newest pane
    the policy judged) and ``updated_at`` (epoch seconds of the step: an old value means no
    leader is stepping). Non-finite numbers are stored as ``None`` (JSON has none).
    """
    table = db.drift_reports
    with engine.connect() as conn:
        report = conn.execute(sa.select(table.c.report)
                              .where(table.c.model_name == model_name)).scalar()
    return None if report is None else dict(report)


def read_newer_format_workers(engine: Engine, model_name: str) -> dict[str, int]:
    """``newer_format_workers`` of the stored merged report (see :func:`read_report`),
    ``{}`` before any leader stepped. Only that key is read, not the whole report, so the
    dashboard's state can ask every second."""
    table = db.drift_reports
    with engine.connect() as conn:
        newer = conn.execute(sa.select(table.c.report["newer_format_workers"])
                             .where(table.c.model_name == model_name)).scalar()
    return {str(worker): int(version) for worker, version in (newer or {}).items()}


# ---------------------------------------------------------------------- helpers
def _check_dialect(engine: Engine) -> str:
    name = engine.dialect.name
    if name not in ("sqlite", "postgresql"):
        raise ValueError(f"drift sync supports SQLite and PostgreSQL, not {name!r}: "
                         "open the database with driftloop.db.create_engine")
    return name


def _require_time_panes(detector: DriftDetector) -> None:
    if detector.pane_seconds is None:
        raise ValueError(
            "drift sync needs time-based panes: build every worker's and the leader's "
            "detector with pane_seconds=... so that panes line up across workers by time"
        )


def _insert(engine: Engine, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_update`` on both backends."""
    if engine.dialect.name == "postgresql":
        return pg_dialect.insert(table)
    return sqlite_dialect.insert(table)


def _utc(timestamp: float) -> datetime:
    """Epoch seconds as an aware UTC datetime: SQLite stores it without the zone, so every
    value in ``drift_windows`` must be UTC for its text comparison to order by time."""
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _json_safe(value: Any) -> Any:
    """``value`` with numpy scalars made Python, tuples made lists and NaN / ±inf made
    ``None``: PostgreSQL's JSON type rejects the ``NaN`` tokens ``json.dumps`` writes."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
