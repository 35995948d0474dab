"""The schema's history (driftloop.db.migrations): new databases at the head, a previous
release's database adopted with its rows, a real revision applied, a newer schema refused,
and concurrent starts upgrading once. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from driftloop import db
from driftloop.cli import main
from driftloop.db import migrations

BASELINE = migrations.location() / "versions" / "0001_baseline.py"

NOTE_REVISION = '''
"""A throwaway revision: a nullable note on each model."""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("note", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("note")
'''


def previous_release_metadata() -> sa.MetaData:
    """The tables as the releases before schema revisions created them: the baseline
    revision's frozen copy, not today's db.metadata (which later revisions change)."""
    spec = importlib.util.spec_from_file_location("baseline_0001", BASELINE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    metadata = sa.MetaData()
    for name, items in module._tables().items():
        sa.Table(name, metadata, *items)
    return metadata


def a_row(table: sa.Table) -> dict[str, Any]:
    """One row with a value in every column, by the column's type."""
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    by_type: list[tuple[type, Any]] = [
        (sa.Boolean, True), (sa.DateTime, at), (sa.Integer, 7), (sa.LargeBinary, b"\x00\x01"),
        (sa.JSON, {"kept": [1, 2]}), (sa.String, "s"),  # Text is a String
    ]
    row = {}
    for column in table.columns:
        row[column.name] = next(value for kind, value in by_type
                                if isinstance(column.type, kind))
    if table.name == "training_runs":
        row["active"] = True
    return row


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_new_database_is_created_at_the_head_exactly_as_db_metadata(db_url: str) -> None:
    engine = db.create_engine(db_url)
    found = migrations.state(engine)
    assert (found.current, found.up_to_date) == (found.head, True)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                db.metadata)
    assert diff == [], "db.py and the revisions disagree: write a revision for the change"


def test_a_previous_release_database_is_adopted_and_upgraded_with_every_row(
    db_url: str,
) -> None:
    old = previous_release_metadata()
    assert set(old.tables) == set(db.metadata.tables)  # every table of today's schema
    plain = sa.create_engine(db_url)
    old.create_all(plain)  # what the previous release did: create_all, no alembic_version
    rows = {name: a_row(table) for name, table in old.tables.items()}
    with plain.begin() as conn:
        for name, table in old.tables.items():
            conn.execute(sa.insert(table).values(rows[name]))
    plain.dispose()

    engine = db.connect(db_url)
    before = migrations.state(engine)
    assert (before.current, before.legacy, before.known) == (None, True, True)
    assert migrations.ensure(engine).legacy
    after = migrations.state(engine)
    assert after.up_to_date and after.current == after.head
    with engine.connect() as conn:
        for name, table in db.metadata.tables.items():
            stored = [dict(r._mapping) for r in conn.execute(sa.select(table))]
            assert len(stored) == 1, name
            kept = {k: v for k, v in stored[0].items() if k in rows[name]}
            expected = dict(rows[name])
            for column, value in kept.items():  # SQLite reads datetimes back naive
                if isinstance(value, datetime):
                    kept[column] = db.aware(value)
                if isinstance(value, bytes | memoryview):
                    kept[column] = bytes(value)
            assert kept == expected, name


def test_an_older_release_missing_a_table_gets_it_when_adopted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = previous_release_metadata()
    plain = sa.create_engine(url)
    old.create_all(plain, tables=[t for n, t in old.tables.items() if n != "feed_history"])
    plain.dispose()
    db.create_engine(url)
    assert "feed_history" in tables(url)


def test_a_new_revision_applies_and_the_older_code_then_refuses_the_database(
    db_url: str, tmp_path: Path
) -> None:
    scripts = tmp_path / "scripts"
    shutil.copytree(migrations.location(), scripts,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "0002_note.py").write_text(NOTE_REVISION)
    engine = db.create_engine(db_url)
    with db.transaction(engine) as conn:
        conn.execute(sa.insert(db.models).values(name="m", next_version=2, generation=1))

    assert migrations.ensure(engine, scripts).current == "0001"
    assert migrations.state(engine, scripts).current == "0002"
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(sa.text(
            "SELECT name, next_version, note FROM models"))] == [("m", 2, None)]

    with pytest.raises(migrations.SchemaTooNewError) as refused:
        db.create_engine(db_url)  # this code knows only up to 0001
    message = str(refused.value)
    assert "\n" not in message
    assert "revision 0002" in message and "newest is 0001" in message
    assert "install" in message


def test_the_cli_names_both_revisions_of_a_newer_schema_in_one_line(tmp_path: Path) -> None:
    db.create_engine(f"sqlite:///{tmp_path / 'driftloop.db'}").dispose()
    with sa.create_engine(f"sqlite:///{tmp_path / 'driftloop.db'}").begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0999'"))
    runner = CliRunner()
    for args in (["models", "list"], ["status"], ["db", "upgrade"]):
        result = runner.invoke(main, [*args, "--data-dir", str(tmp_path)])
        assert result.exit_code == 1, (args, result.output)
        error = result.output.strip()
        assert error.count("\n") == 0 and "Traceback" not in error, error
        assert "revision 0999" in error and "newest is 0001" in error, error
    current = runner.invoke(main, ["db", "current", "--data-dir", str(tmp_path)])
    assert current.exit_code == 0 and "0999" in current.output


def test_db_upgrade_and_db_current(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path / "new")]
    missing = runner.invoke(main, ["db", "current", *args])
    assert missing.exit_code == 1 and "no driftloop database" in missing.output
    first = runner.invoke(main, ["db", "upgrade", *args])
    assert first.exit_code == 0 and "upgraded from no schema to revision 0001" in first.output
    again = runner.invoke(main, ["db", "upgrade", *args])
    assert again.exit_code == 0 and "already at revision 0001" in again.output
    current = runner.invoke(main, ["db", "current", *args])
    assert current.exit_code == 0
    assert "schema revision 0001 (head: up to date)" in current.output


CONCURRENT = """
import sys
from driftloop import db
from driftloop.db import migrations
print(migrations.ensure(db.connect(sys.argv[1])).current or "none")
"""


def test_concurrent_starts_on_a_previous_release_database_upgrade_once(db_url: str) -> None:
    plain = sa.create_engine(db_url)
    previous_release_metadata().create_all(plain)
    plain.dispose()
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, db_url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    seen = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        seen.append(out.strip())
    # Under the lock, exactly one found the unversioned tables and upgraded them; the
    # others found the head, never a half-done upgrade.
    assert sorted(seen) == ["0001"] * 3 + ["none"]
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            ("0001",)]
    engine.dispose()


def test_opening_a_database_logs_nothing_from_alembic_at_info(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A training run's log captured Alembic's plugin and context lines at INFO."""
    with caplog.at_level(logging.INFO):
        db.create_engine(f"sqlite:///{tmp_path / 'new.db'}").dispose()
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("alembic")]
