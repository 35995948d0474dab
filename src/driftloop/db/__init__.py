"""One SQLAlchemy Core schema for every table driftloop keeps, and the engine factory.

SQLite (WAL) is the embedded default; PostgreSQL (psycopg 3) is the multi-replica backend.
Both run the same statements. Writes go through :func:`transaction`, which on SQLite
starts with ``BEGIN IMMEDIATE`` so two writers queue on the database lock instead of
failing when one of them tries to upgrade a read lock; reads (``engine.connect()``) start
a deferred transaction and never block a writer (WAL). PostgreSQL uses row locks
(``SELECT … FOR UPDATE``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()

#: One row per model name: the counters that writers serialise on.
models = sa.Table(
    "models",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("next_version", sa.Integer, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),  # bumped on every alias change
    sa.Column("traffic", sa.JSON),  # the serving split (mode, weight, shadow_fraction)
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # candidate|champion|archived|rejected
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("parent_version", sa.Integer),
    sa.Column("dataset_id", sa.String(200)),
    sa.Column("dataset_sha256", sa.String(64)),
    sa.Column("run_id", sa.String(64)),
    sa.Column("drift_event_id", sa.String(64)),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("artifact_path", sa.String(500), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("framework", sa.String(50), nullable=False),
    sa.Column("code_revision", sa.String(64)),
)

#: champion / candidate (and any user alias) → version; one indexed read serves get_champion.
aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("alias", sa.String(50), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

#: The champions of a model in the order they served; rollback pops the newest.
champion_history = sa.Table(
    "champion_history",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(50), nullable=False),
    sa.Column("name", sa.String(200)),
    sa.Column("version", sa.Integer),
    sa.Column("reason", sa.Text),
    sa.Column("details", sa.JSON, nullable=False),
)

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("slot", sa.String(16), nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("output", sa.JSON),
    sa.Column("shadow", sa.JSON),  # {"version": int, "output": ...} when mirrored
    sa.Column("label", sa.JSON),
    sa.Column("labelled_at", sa.DateTime(timezone=True), index=True),
)

dataset_snapshots = sa.Table(
    "dataset_snapshots",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("path", sa.String(500), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("parent_id", sa.String(200)),
    sa.Column("manifest", sa.JSON, nullable=False),
)


#: Each serving process's drift window (DriftDetector.window_bytes), for the leader to merge.
drift_windows = sa.Table(
    "drift_windows",
    metadata,
    sa.Column("worker_id", sa.String(100), primary_key=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("window", sa.LargeBinary, nullable=False),
)

#: The leader's merged view: the latest drift report (JSON) per model.
drift_reports = sa.Table(
    "drift_reports",
    metadata,
    sa.Column("model_name", sa.String(200), primary_key=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("leader_id", sa.String(100), nullable=False),
    sa.Column("report", sa.JSON, nullable=False),
)

#: One row per serving process: its proof of life, so the CLI can tell whether a server is
#: running (``driftloop status``, ``driftloop retrain``) instead of trusting stale state.
server_heartbeats = sa.Table(
    "server_heartbeats",
    metadata,
    sa.Column("instance", sa.String(200), primary_key=True),  # host:pid:id
    sa.Column("model_name", sa.String(200), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stopped_at", sa.DateTime(timezone=True)),
    sa.Column("drives_loop", sa.Boolean, nullable=False),
)

#: Leadership leases (PostgreSQL): who leads what until when, by the database's clock.
#: ``epoch`` grows by one with every new holder and fences the holder's writes.
leader_leases = sa.Table(
    "leader_leases",
    metadata,
    sa.Column("name", sa.String(250), primary_key=True),
    sa.Column("holder", sa.String(100), nullable=False),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

#: Retraining runs: the RetrainOrchestrator's persisted state machine, one row per run.
#: ``active`` is true until the run ends; the partial unique index allows one active run
#: per model, so two processes triggering at once cannot both start one.
training_runs = sa.Table(
    "training_runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("outcome", sa.String(16)),  # promoted | rejected | failed | rolled_back
    sa.Column("reason", sa.Text),
    sa.Column("trigger", sa.JSON, nullable=False),
    sa.Column("attached", sa.JSON, nullable=False),  # triggers that arrived during the run
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state_since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("attempt", sa.Integer, nullable=False),  # tries of the current step
    sa.Column("snapshot_id", sa.String(200)),
    sa.Column("parent_version", sa.Integer),
    sa.Column("candidate_version", sa.Integer),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Index("one_active_run", "model_name", unique=True,
             sqlite_where=sa.text("active"), postgresql_where=sa.text("active")),
)

#: Every transition and trainer log line of a run, in order.
run_events = sa.Table(
    "run_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # transition | log
    sa.Column("from_state", sa.String(16)),
    sa.Column("to_state", sa.String(16)),
    sa.Column("message", sa.Text),
)


#: The dashboard's history (serving/history.py): drift evaluations, alarms, traffic splits
#: and metrics points per model, written by the process that evaluates drift and pruned to
#: the newest rows of each kind, so any worker and any restart can replay the story.
feed_history = sa.Table(
    "feed_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # drift | alarm | traffic | metrics
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("feed_history_by_kind", "model_name", "kind", "id"),
)


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///…`` or ``postgresql+psycopg://…``) whose schema is
    the code's: a new database is created, an older one upgraded (Alembic, under a lock, so
    several processes may start at once), and one *newer* than the code refused with
    :class:`~driftloop.db.migrations.SchemaTooNewError`. See :func:`driftloop.db.migrations.ensure`.

    SQLite gets WAL, ``synchronous=FULL`` (a committed transaction survives power loss),
    a 30 s busy timeout and ``BEGIN IMMEDIATE`` for every transaction.
    """
    from driftloop.db import migrations  # noqa: PLC0415 (Alembic loads only when a DB opens)

    engine = connect(url, **kwargs)
    migrations.ensure(engine)
    return engine


def connect(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` configured like :func:`create_engine`'s, with the schema left
    alone: for ``driftloop db`` (which reports or upgrades it) and for Alembic's env.py."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = sa.create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below decide
        cursor = dbapi_connection.cursor()
        # The wait first: switching to WAL takes a lock, and processes that open one new
        # database together (pushes, workers) waited only sqlite3's 5 s default for it,
        # which a busy machine ran out ("database is locked").
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


_WRITE = "driftloop_write"


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction, committed on success and rolled back on error."""
    with engine.connect() as plain:
        conn = plain.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


def aware(value: datetime) -> datetime:
    """A datetime read back as aware UTC: SQLite returns naive UTC, PostgreSQL the session's
    zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
