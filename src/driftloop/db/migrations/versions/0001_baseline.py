"""Baseline: the schema of the releases before schema revisions.

A frozen copy of db.py's tables as they were then (later revisions change them; this file
never does). It creates only the tables that are missing, so that it also *adopts* a
database created by an earlier release (``metadata.create_all``, no ``alembic_version``):
the tables it has are kept with their rows, any an older release lacked are added, and the
revision is recorded.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _tables() -> dict[str, list[sa.Column[Any] | sa.Index]]:
    """Every table's columns and indexes (``index=True`` names them ``ix_<table>_<column>``,
    as create_all did)."""
    at = sa.DateTime(timezone=True)
    return {
        "models": [
            sa.Column("name", sa.String(200), primary_key=True),
            sa.Column("next_version", sa.Integer, nullable=False),
            sa.Column("generation", sa.Integer, nullable=False),
            sa.Column("traffic", sa.JSON),
        ],
        "model_versions": [
            sa.Column("name", sa.String(200), primary_key=True),
            sa.Column("version", sa.Integer, primary_key=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("created_at", at, nullable=False),
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
        ],
        "model_aliases": [
            sa.Column("name", sa.String(200), primary_key=True),
            sa.Column("alias", sa.String(50), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
        ],
        "champion_history": [
            sa.Column("name", sa.String(200), primary_key=True),
            sa.Column("seq", sa.Integer, primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("at", at, nullable=False),
        ],
        "audit_log": [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", at, nullable=False),
            sa.Column("actor", sa.String(100), nullable=False),
            sa.Column("action", sa.String(50), nullable=False),
            sa.Column("name", sa.String(200)),
            sa.Column("version", sa.Integer),
            sa.Column("reason", sa.Text),
            sa.Column("details", sa.JSON, nullable=False),
        ],
        "predictions": [
            sa.Column("request_id", sa.String(64), primary_key=True),
            sa.Column("ts", at, nullable=False, index=True),
            sa.Column("model_name", sa.String(200), nullable=False),
            sa.Column("model_version", sa.Integer, nullable=False),
            sa.Column("slot", sa.String(16), nullable=False),
            sa.Column("features", sa.JSON, nullable=False),
            sa.Column("output", sa.JSON),
            sa.Column("shadow", sa.JSON),
            sa.Column("label", sa.JSON),
            sa.Column("labelled_at", at, index=True),
        ],
        "dataset_snapshots": [
            sa.Column("id", sa.String(200), primary_key=True),
            sa.Column("created_at", at, nullable=False),
            sa.Column("path", sa.String(500), nullable=False),
            sa.Column("rows", sa.Integer, nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("parent_id", sa.String(200)),
            sa.Column("manifest", sa.JSON, nullable=False),
        ],
        "drift_windows": [
            sa.Column("worker_id", sa.String(100), primary_key=True),
            sa.Column("model_name", sa.String(200), nullable=False),
            sa.Column("updated_at", at, nullable=False),
            sa.Column("window", sa.LargeBinary, nullable=False),
        ],
        "drift_reports": [
            sa.Column("model_name", sa.String(200), primary_key=True),
            sa.Column("updated_at", at, nullable=False),
            sa.Column("leader_id", sa.String(100), nullable=False),
            sa.Column("report", sa.JSON, nullable=False),
        ],
        "server_heartbeats": [
            sa.Column("instance", sa.String(200), primary_key=True),
            sa.Column("model_name", sa.String(200), nullable=False, index=True),
            sa.Column("started_at", at, nullable=False),
            sa.Column("beat_at", at, nullable=False),
            sa.Column("stopped_at", at),
            sa.Column("drives_loop", sa.Boolean, nullable=False),
        ],
        "leader_leases": [
            sa.Column("name", sa.String(250), primary_key=True),
            sa.Column("holder", sa.String(100), nullable=False),
            sa.Column("epoch", sa.BigInteger, nullable=False),
            sa.Column("expires_at", at, nullable=False),
        ],
        "training_runs": [
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("model_name", sa.String(200), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("active", sa.Boolean, nullable=False),
            sa.Column("outcome", sa.String(16)),
            sa.Column("reason", sa.Text),
            sa.Column("trigger", sa.JSON, nullable=False),
            sa.Column("attached", sa.JSON, nullable=False),
            sa.Column("created_at", at, nullable=False),
            sa.Column("updated_at", at, nullable=False),
            sa.Column("state_since", at, nullable=False),
            sa.Column("finished_at", at),
            sa.Column("attempt", sa.Integer, nullable=False),
            sa.Column("snapshot_id", sa.String(200)),
            sa.Column("parent_version", sa.Integer),
            sa.Column("candidate_version", sa.Integer),
            sa.Column("evidence", sa.JSON, nullable=False),
            sa.Index("one_active_run", "model_name", unique=True,
                     sqlite_where=sa.text("active"), postgresql_where=sa.text("active")),
        ],
        "run_events": [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("run_id", sa.String(64), nullable=False, index=True),
            sa.Column("at", at, nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("from_state", sa.String(16)),
            sa.Column("to_state", sa.String(16)),
            sa.Column("message", sa.Text),
        ],
        "feed_history": [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("model_name", sa.String(200), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("at", at, nullable=False),
            sa.Column("data", sa.JSON, nullable=False),
            sa.Index("feed_history_by_kind", "model_name", "kind", "id"),
        ],
    }


def upgrade() -> None:
    """Create each table (with its indexes) that the database does not have yet."""
    inspector = sa.inspect(op.get_bind())
    for name, items in _tables().items():
        if not inspector.has_table(name):
            op.create_table(name, *items)


def downgrade() -> None:
    for name in reversed(_tables()):
        op.drop_table(name)
