"""The schema's history: Alembic revisions shipped inside the package, applied on start.

:func:`ensure` runs whenever driftloop opens a database (:func:`driftloop.db.create_engine`)
and gives every process the schema its code was written for:

- **new database**: every revision runs, from the baseline (today's tables) to the head;
- **older revision**: upgraded to the head, automatically, so the embedded default needs
  no command and ``driftloop db upgrade`` is only for doing it ahead of a rolling upgrade;
- **driftloop tables but no revision** (created by a release before schema versions): the
  baseline adopts them (it creates only the tables an old release lacked), then upgrades;
- **a revision this code does not know** (a newer driftloop migrated it): refused with
  :class:`SchemaTooNewError`, whose one-line message names both revisions.

The upgrade runs in one transaction under a lock (a ``flock`` on ``<db>.schema.lock`` for a
SQLite file, ``pg_advisory_xact_lock`` on PostgreSQL) and re-reads the revision once it holds
it, so workers and replicas starting together upgrade once and never race. A database that
is already at the head costs one ``SELECT`` and takes no lock.

The revisions are found with :mod:`importlib.resources` (they work from a wheel) and Alembic's
configuration is built in code: no ``alembic.ini`` at run time.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine

from driftloop import db
from driftloop.errors import ConfigError

logger = logging.getLogger(__name__)
# Alembic logs every plugin it sets up and every context at INFO, each time a process opens
# a database: in a training run's log that is a screen of noise before the first real line.
# A level set by the user (anything but NOTSET) is kept.
if logging.getLogger("alembic").level == logging.NOTSET:
    logging.getLogger("alembic").setLevel(logging.WARNING)

#: PostgreSQL advisory lock held while checking and upgrading ("dlschema" in ASCII).
LOCK_KEY = 0x646C736368656D61


class SchemaTooNewError(ConfigError, RuntimeError):
    """The database's schema revision is unknown to this code: a newer driftloop wrote it."""


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands against the code's revisions."""

    url: str  #: the database, password hidden
    current: str | None  #: the revision recorded in ``alembic_version``; None: none
    head: str  #: the newest revision this code knows
    known: bool  #: whether this code knows ``current`` (None counts as known)
    legacy: bool  #: driftloop tables without a recorded revision (a release before them)

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        """One line for people: the revision, and what (if anything) to do about it."""
        if self.up_to_date:
            return f"{self.url}: schema revision {self.current} (head: up to date)"
        if not self.known:
            return self.too_new_message()
        if self.current is not None:
            return (f"{self.url}: schema revision {self.current}, older than the code's head "
                    f"{self.head}: `driftloop db upgrade` (or any start) upgrades it")
        if self.legacy:
            return (f"{self.url}: driftloop tables without a schema revision (created before "
                    f"revisions were recorded): `driftloop db upgrade` adopts them as the "
                    f"baseline and upgrades them to {self.head}")
        return (f"{self.url}: no driftloop schema yet: the first start (or `driftloop db "
                f"upgrade`) creates it at {self.head}")

    def too_new_message(self) -> str:
        return (f"the database {self.url} has schema revision {self.current}, which this "
                f"driftloop does not know (its newest is {self.head}): a newer driftloop "
                "upgraded it; install that release or a later one to use this database")


def location() -> Path:
    """The folder holding env.py and versions/, inside the installed package."""
    return Path(str(resources.files(__name__)))


def state(engine: Engine, scripts: str | Path | None = None) -> SchemaState:
    """Read the database's schema revision and compare it with the code's; changes nothing."""
    with engine.connect() as conn:
        return _read(conn, _script_directory(str(scripts or location())))


def ensure(engine: Engine, scripts: str | Path | None = None) -> SchemaState:
    """Bring the database to the code's head (see the module's docstring); returns the state
    found before. ``scripts`` replaces the shipped revisions (tests)."""
    folder = str(scripts or location())
    script = _script_directory(folder)
    found = state(engine, folder)
    if found.up_to_date:
        return found
    if not found.known:
        raise SchemaTooNewError(found.too_new_message())
    with _locked(engine) as conn:
        found = _read(conn, script)  # another process may have upgraded meanwhile
        if not found.known:
            raise SchemaTooNewError(found.too_new_message())
        if not found.up_to_date:
            if found.legacy:
                logger.info("%s: adopting tables created before schema revisions", found.url)
            logger.info("%s: upgrading the schema from %s to %s", found.url,
                        found.current or "nothing", found.head)
            config = Config()
            config.set_main_option("script_location", folder.replace("%", "%%"))
            config.attributes["connection"] = conn
            command.upgrade(config, found.head)
    return found


def _read(conn: Connection, script: ScriptDirectory) -> SchemaState:
    current = MigrationContext.configure(conn).get_current_revision()
    head = script.get_current_head()
    assert head is not None, "driftloop ships at least the baseline revision"
    legacy = current is None and any(sa.inspect(conn).has_table(name)
                                     for name in db.metadata.tables)
    return SchemaState(url=conn.engine.url.render_as_string(hide_password=True),
                       current=current, head=head, known=_knows(script, current),
                       legacy=legacy)


def _knows(script: ScriptDirectory, revision: str | None) -> bool:
    if revision is None:
        return True
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


@functools.lru_cache(maxsize=8)
def _script_directory(folder: str) -> ScriptDirectory:
    """The revisions in ``folder``, read once per process."""
    return ScriptDirectory(folder)


@contextlib.contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A write transaction that no other process's schema upgrade runs alongside."""
    with contextlib.ExitStack() as stack:
        if engine.dialect.name == "sqlite":
            stack.enter_context(_file_lock(engine.url.database))
        conn = stack.enter_context(db.transaction(engine))
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        yield conn


@contextlib.contextmanager
def _file_lock(database: str | None) -> Iterator[None]:
    """An exclusive ``flock`` on ``<database>.schema.lock``: it waits as long as the upgrade
    takes (SQLite's own lock would give up after the busy timeout), and the kernel frees it
    when its holder dies. An in-memory database belongs to one process: no lock."""
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    path = Path(database).resolve()
    fd = os.open(path.with_name(f"{path.name}.schema.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
