"""ModelRegistry: versions, aliases, promotion, rollback, lineage and an audit log.

Every change is one database transaction that also writes an audit row and bumps the
model's ``generation`` counter, which serving processes poll cheaply to notice a new
champion. Artifacts are written before their row exists (so no row ever points at a
missing or partial artifact) and verified against their sha256 before every load.

>>> import tempfile
>>> from sklearn.linear_model import LogisticRegression
>>> root = tempfile.mkdtemp()
>>> reg = ModelRegistry.open(f"sqlite:///{root}/driftloop.db", artifacts=root)
>>> v1 = reg.push_candidate("churn", LogisticRegression().fit([[0], [1]], [0, 1]))
>>> reg.promote_candidate("churn", v1.version).status
'champion'
>>> reg.get_champion("churn").version
1
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from driftloop import db
from driftloop.models.base import ModelAdapter, adapter_for, adapter_named, installed_adapters
from driftloop.objectstore import open_location
from driftloop.registry.artifacts import ArtifactStore, check_model_name
from driftloop.registry.errors import ModelNotFoundError, PromotionConflictError

if TYPE_CHECKING:  # the registry is imported by light commands: no pandas until needed
    from driftloop.config import Settings

CHAMPION, CANDIDATE = "champion", "candidate"
#: PostgreSQL channel that carries the model name of every registry change.
NOTIFY_CHANNEL = "driftloop_registry"
ARCHIVED, REJECTED = "archived", "rejected"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version and everything recorded about it."""

    name: str
    version: int
    status: str
    created_at: datetime
    parent_version: int | None
    dataset_id: str | None
    dataset_sha256: str | None
    run_id: str | None
    drift_event_id: str | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    artifact_path: str
    sha256: str
    size_bytes: int
    framework: str
    code_revision: str | None

    def to_dict(self) -> dict[str, Any]:
        out = {field: getattr(self, field) for field in self.__dataclass_fields__}
        out["created_at"] = self.created_at.isoformat()
        return out


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    name: str | None
    version: int | None
    reason: str | None
    details: dict[str, Any]


class ModelRegistry:
    """Model versions in a SQL database (SQLite or PostgreSQL) and artifacts on disk."""

    def __init__(self, engine: Engine, artifacts: ArtifactStore,
                 adapters: Sequence[ModelAdapter] | None = None) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.adapters = adapters if adapters is not None else installed_adapters()

    @classmethod
    def open(cls, url: str, *, artifacts: str | Path = "artifacts", cache: str | Path | None = None,
             adapters: Sequence[ModelAdapter] | None = None) -> ModelRegistry:
        """A registry on ``url`` (``sqlite:///path.db`` or ``postgresql+psycopg://…``) with
        artifacts under the folder ``artifacts``, or in the object store
        ``artifacts="s3://bucket/prefix"`` with this host's verified copies under ``cache``
        (default: a folder in the temporary directory). Any other URL scheme is refused
        (:class:`~driftloop.objectstore.UnsupportedLocationError`)."""
        remote = open_location(artifacts)
        if remote is None:
            root = Path(artifacts)
        else:
            root = Path(cache) if cache is not None else _default_cache(remote.url)
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return cls(db.create_engine(url), ArtifactStore(root, remote), adapters)

    @classmethod
    def for_settings(cls, settings: Settings) -> ModelRegistry:
        """The registry a server or the loop uses: ``database_url``, with artifacts in
        ``artifacts_url`` (cached in ``data_dir``) or, without one, in ``data_dir``."""
        return cls.open(settings.database_url,
                        artifacts=settings.artifacts_url or settings.data_dir,
                        cache=settings.data_dir, adapters=installed_adapters(settings.adapters))

    # ------------------------------------------------------------------ writing
    def push_candidate(
        self,
        name: str,
        model: Any,
        *,
        parent: int | None = None,
        dataset: tuple[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        drift_event_id: str | None = None,
        actor: str = "api",
        reason: str | None = None,
    ) -> ModelVersion:
        """Store ``model`` as a new version with status candidate and point the candidate
        alias at it. ``dataset`` is the training snapshot's ``(id, sha256)``."""
        check_model_name(name)
        adapter = adapter_for(model, self.adapters)
        version = self._allocate_version(name)
        if parent is not None:
            self.get_version(name, parent)  # fails early, before writing anything
        stored = self.artifacts.write(name, version, model, adapter)
        now = _now()
        with db.transaction(self.engine) as conn:
            self._lock_model(conn, name)
            conn.execute(sa.insert(db.model_versions).values(
                name=name, version=version, status=CANDIDATE, created_at=now,
                parent_version=parent,
                dataset_id=dataset[0] if dataset else None,
                dataset_sha256=dataset[1] if dataset else None,
                run_id=run_id, drift_event_id=drift_event_id,
                params=_jsonable(params or {}, "params"),
                metrics=_jsonable(metrics or {}, "metrics"),
                artifact_path=stored.path, sha256=stored.sha256, size_bytes=stored.size_bytes,
                framework=adapter.framework, code_revision=code_revision(),
            ))
            self._set_alias(conn, name, CANDIDATE, version)
            self._bump(conn, name)
            self._audit(conn, actor, "push_candidate", name, version, reason,
                        {"sha256": stored.sha256, "parent": parent, "run_id": run_id})
        return self.get_version(name, version)

    def score_candidate(self, name: str, version: int, metrics: Mapping[str, Any], *,
                        actor: str = "api", reason: str | None = None) -> ModelVersion:
        """Merge ``metrics`` (holdout scores, shadow evidence) into the version's record."""
        with db.transaction(self.engine) as conn:
            row = self._row(conn, name, version, lock=True)
            merged = {**row.metrics, **_jsonable(metrics, "metrics")}
            conn.execute(sa.update(db.model_versions)
                         .where(_key(name, version)).values(metrics=merged))
            self._audit(conn, actor, "score_candidate", name, version, reason, dict(metrics))
        return self.get_version(name, version)

    def promote_candidate(self, name: str, version: int, *,
                          expected_generation: int | None = None, actor: str = "api",
                          reason: str | None = None) -> ModelVersion:
        """Make candidate ``version`` the champion, in one transaction; the old champion is
        archived (never deleted). With ``expected_generation`` the promotion succeeds only
        if nothing changed since the caller read that generation (compare-and-swap)."""
        with db.transaction(self.engine) as conn:
            generation = self._lock_model(conn, name)
            if expected_generation is not None and expected_generation != generation:
                raise PromotionConflictError(
                    f"{name}: the registry changed (generation {generation}, expected "
                    f"{expected_generation}); reload and decide again"
                )
            row = self._row(conn, name, version)
            if row.status != CANDIDATE:
                raise PromotionConflictError(
                    f"{name} v{version} is {row.status}, not a candidate: only candidates "
                    "can be promoted"
                )
            self._crown(conn, name, version, generation)
            self._audit(conn, actor, "promote", name, version, reason,
                        {"previous": self._previous_champion(conn, name)})
        return self.get_version(name, version)

    def rollback(self, name: str, *, actor: str = "api", reason: str | None = None) -> ModelVersion:
        """Return to the champion before the current one; the current one is archived."""
        with db.transaction(self.engine) as conn:
            self._lock_model(conn, name)
            history = conn.execute(
                sa.select(db.champion_history.c.seq, db.champion_history.c.version)
                .where(db.champion_history.c.name == name)
                .order_by(db.champion_history.c.seq.desc()).limit(2)
            ).all()
            if len(history) < 2:
                raise PromotionConflictError(
                    f"{name}: there is no previous champion to roll back to")
            (current_seq, current), (_, previous) = history
            conn.execute(sa.delete(db.champion_history).where(
                db.champion_history.c.name == name, db.champion_history.c.seq == current_seq))
            self._set_status(conn, name, current, ARCHIVED)
            self._set_status(conn, name, previous, CHAMPION)
            self._set_alias(conn, name, CHAMPION, previous)
            self._bump(conn, name)
            self._audit(conn, actor, "rollback", name, previous, reason, {"from": current})
        return self.get_version(name, previous)

    def restore(self, name: str, version: int, *, reason: str,
                actor: str = "api") -> ModelVersion:
        """Make archived ``version`` the champion again: how a rollback is undone (a second
        rollback walks further back instead). A reason is required, since this puts a
        model back that someone once retired; it is kept in the audit log."""
        if not reason or not reason.strip():
            raise PromotionConflictError(f"{name} v{version}: restoring an archived version "
                                         "needs a reason")
        with db.transaction(self.engine) as conn:
            generation = self._lock_model(conn, name)
            row = self._row(conn, name, version)
            if row.status != ARCHIVED:
                raise PromotionConflictError(
                    f"{name} v{version} is {row.status}, not archived: only archived versions "
                    "can be restored (promote a candidate instead)")
            self._crown(conn, name, version, generation)
            self._audit(conn, actor, "restore", name, version, reason,
                        {"previous": self._previous_champion(conn, name)})
        return self.get_version(name, version)

    def reject_candidate(self, name: str, version: int, *, actor: str = "api",
                         reason: str | None = None) -> ModelVersion:
        """Mark a candidate rejected (kept for the record) and clear the candidate alias."""
        with db.transaction(self.engine) as conn:
            self._lock_model(conn, name)
            row = self._row(conn, name, version)
            if row.status != CANDIDATE:
                raise PromotionConflictError(f"{name} v{version} is {row.status}, not a candidate")
            self._set_status(conn, name, version, REJECTED)
            conn.execute(sa.delete(db.aliases).where(
                db.aliases.c.name == name, db.aliases.c.alias == CANDIDATE,
                db.aliases.c.version == version))
            self._bump(conn, name)
            self._audit(conn, actor, "reject", name, version, reason, {})
        return self.get_version(name, version)

    def set_traffic(self, name: str, traffic: Mapping[str, Any], *, actor: str = "api",
                    reason: str | None = None) -> int:
        """Store the serving split for every server process (they follow ``generation``);
        returns the new generation."""
        with db.transaction(self.engine) as conn:
            self._lock_model(conn, name)
            conn.execute(sa.update(db.models).where(db.models.c.name == name)
                         .values(traffic=_jsonable(traffic, "traffic")))
            self._bump(conn, name)
            self._audit(conn, actor, "set_traffic", name, None, reason, dict(traffic))
            return int(conn.execute(sa.select(db.models.c.generation)
                                    .where(db.models.c.name == name)).scalar_one())

    def traffic(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(db.models.c.traffic)
                                 .where(db.models.c.name == name)).scalar()
        return dict(value) if value else None

    # ------------------------------------------------------------------ reading
    def get_champion(self, name: str) -> ModelVersion | None:
        """The serving version, by one indexed join on the alias table."""
        return self.get_alias(name, CHAMPION)

    def get_candidate(self, name: str) -> ModelVersion | None:
        return self.get_alias(name, CANDIDATE)

    def get_alias(self, name: str, alias: str) -> ModelVersion | None:
        query = (sa.select(db.model_versions)
                 .join(db.aliases, sa.and_(db.aliases.c.name == db.model_versions.c.name,
                                           db.aliases.c.version == db.model_versions.c.version))
                 .where(db.aliases.c.name == name, db.aliases.c.alias == alias))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _version(row) if row else None

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.engine.connect() as conn:
            return _version(self._row(conn, name, version))

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.model_versions).where(db.model_versions.c.name == name)
                                .order_by(db.model_versions.c.version)).all()
        return [_version(r) for r in rows]

    def list_models(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(db.models.c.name).order_by(db.models.c.name))
                        .scalars())

    def generation(self, name: str) -> int:
        """A counter bumped by every alias or status change; -1 for an unknown model."""
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(db.models.c.generation)
                                 .where(db.models.c.name == name)).scalar()
        return -1 if value is None else int(value)

    def load(self, name: str, version: int) -> Any:
        """The model of ``version``; its sha256 is checked first (ArtifactIntegrityError)."""
        record = self.get_version(name, version)
        adapter = adapter_named(record.framework, self.adapters)
        return self.artifacts.load(record.artifact_path, record.sha256, adapter)

    def audit(self, name: str | None = None, limit: int = 100) -> list[AuditEntry]:
        query = sa.select(db.audit_log).order_by(db.audit_log.c.id.desc()).limit(limit)
        if name is not None:
            query = query.where(db.audit_log.c.name == name)
        with self.engine.connect() as conn:
            return [AuditEntry(r.id, db.aware(r.at), r.actor, r.action, r.name, r.version, r.reason,
                               r.details) for r in conn.execute(query)]

    def lineage(self, name: str) -> dict[str, list[dict[str, Any]]]:
        """Nodes (versions, dataset snapshots, runs, drift events) and edges, for a graph."""
        nodes: dict[str, dict[str, Any]] = {}
        edges: list[dict[str, Any]] = []
        for v in self.list_versions(name):
            node = f"model:{name}:{v.version}"
            nodes[node] = {"id": node, "type": "model", **v.to_dict()}
            if v.parent_version is not None:
                edges.append({"source": f"model:{name}:{v.parent_version}", "target": node,
                              "kind": "parent"})
            if v.dataset_id:
                data_node = f"dataset:{v.dataset_id}"
                nodes.setdefault(data_node, {"id": data_node, "type": "dataset",
                                             "dataset_id": v.dataset_id,
                                             "sha256": v.dataset_sha256})
                edges.append({"source": data_node, "target": node, "kind": "trained_on"})
            upstream = node
            if v.run_id:
                run_node = f"run:{v.run_id}"
                nodes.setdefault(run_node, {"id": run_node, "type": "run", "run_id": v.run_id})
                edges.append({"source": run_node, "target": node, "kind": "produced"})
                upstream = run_node
            if v.drift_event_id:
                drift_node = f"drift:{v.drift_event_id}"
                nodes.setdefault(drift_node, {"id": drift_node, "type": "drift_event",
                                              "drift_event_id": v.drift_event_id})
                edges.append({"source": drift_node, "target": upstream, "kind": "triggered"})
        self._describe_snapshots(nodes)
        return {"nodes": list(nodes.values()), "edges": edges}

    def _describe_snapshots(self, nodes: dict[str, dict[str, Any]]) -> None:
        """Add what the snapshot table knows (rows, time, parent) to the dataset nodes."""
        ids = [n["dataset_id"] for n in nodes.values() if n["type"] == "dataset"]
        if not ids:
            return
        table = db.dataset_snapshots
        with self.engine.connect() as conn:
            for row in conn.execute(sa.select(table.c.id, table.c.rows, table.c.created_at,
                                              table.c.parent_id, table.c.path)
                                    .where(table.c.id.in_(ids))):
                nodes[f"dataset:{row.id}"].update(rows=row.rows, path=row.path,
                                                  created_at=db.aware(row.created_at).isoformat(),
                                                  parent_id=row.parent_id)

    def collect_garbage(self, older_than: float = 3600.0) -> list[str]:
        """Delete artifact folders and objects that no version references (a push killed
        between its artifact and its row, or a temporary folder), and snapshot objects no
        snapshot row lists, older than ``older_than`` seconds; returns where they were
        (paths relative to the store, or object URLs)."""
        with self.engine.connect() as conn:
            referenced = set(conn.execute(sa.select(db.model_versions.c.artifact_path)).scalars())
        removed = []
        for folder in self.artifacts.orphans(referenced, older_than):
            shutil.rmtree(folder)
            removed.append(folder.relative_to(self.artifacts.root).as_posix())
        remote = self.artifacts.remote
        from driftloop.data.snapshots import SnapshotStore  # noqa: PLC0415 - pandas

        snapshots = SnapshotStore.for_registry(self)
        for key in [*self.artifacts.remote_orphans(referenced, older_than),
                    *snapshots.orphan_objects(older_than)]:
            assert remote is not None
            remote.delete(key)
            removed.append(f"{remote.url}/{key}")
        if removed:
            with db.transaction(self.engine) as conn:
                self._audit(conn, "registry", "collect_garbage", None, None, None,
                            {"removed": removed})
        return removed

    # ------------------------------------------------------------------ internals
    def _allocate_version(self, name: str) -> int:
        """Reserve the next version number in its own transaction (a crash leaves a gap,
        never a duplicate)."""
        with db.transaction(self.engine) as conn:
            exists = conn.execute(sa.select(db.models.c.name).where(db.models.c.name == name)
                                  .with_for_update()).first()
            if exists is None:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(db.models).values(name=name, next_version=1,
                                                                 generation=0))
                except sa.exc.IntegrityError:
                    pass  # another writer created it first
            current = conn.execute(sa.select(db.models.c.next_version)
                                   .where(db.models.c.name == name).with_for_update()).scalar_one()
            conn.execute(sa.update(db.models).where(db.models.c.name == name)
                         .values(next_version=current + 1))
        return int(current)

    def _lock_model(self, conn: Connection, name: str) -> int:
        generation = conn.execute(sa.select(db.models.c.generation)
                                  .where(db.models.c.name == name).with_for_update()).scalar()
        if generation is None:
            raise ModelNotFoundError(f"no model named {name!r}")
        return int(generation)

    def _row(self, conn: Connection, name: str, version: int, lock: bool = False) -> Any:
        query = sa.select(db.model_versions).where(_key(name, version))
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise ModelNotFoundError(f"{name} has no version {version}")
        return row

    def _crown(self, conn: Connection, name: str, version: int, generation: int) -> None:
        old = conn.execute(sa.select(db.aliases.c.version).where(
            db.aliases.c.name == name, db.aliases.c.alias == CHAMPION)).scalar()
        if old is not None:
            self._set_status(conn, name, old, ARCHIVED)
        self._set_status(conn, name, version, CHAMPION)
        self._set_alias(conn, name, CHAMPION, version)
        conn.execute(sa.delete(db.aliases).where(
            db.aliases.c.name == name, db.aliases.c.alias == CANDIDATE,
            db.aliases.c.version == version))
        seq = conn.execute(sa.select(sa.func.coalesce(sa.func.max(db.champion_history.c.seq), 0))
                           .where(db.champion_history.c.name == name)).scalar_one()
        conn.execute(sa.insert(db.champion_history).values(name=name, seq=seq + 1,
                                                           version=version, at=_now()))
        self._bump(conn, name)

    def _previous_champion(self, conn: Connection, name: str) -> int | None:
        rows = conn.execute(sa.select(db.champion_history.c.version)
                            .where(db.champion_history.c.name == name)
                            .order_by(db.champion_history.c.seq.desc()).limit(2)).scalars().all()
        return int(rows[1]) if len(rows) == 2 else None

    @staticmethod
    def _set_status(conn: Connection, name: str, version: int, status: str) -> None:
        conn.execute(sa.update(db.model_versions).where(_key(name, version))
                     .values(status=status))

    @staticmethod
    def _set_alias(conn: Connection, name: str, alias: str, version: int) -> None:
        conn.execute(sa.delete(db.aliases).where(db.aliases.c.name == name,
                                                 db.aliases.c.alias == alias))
        conn.execute(sa.insert(db.aliases).values(name=name, alias=alias, version=version))

    @staticmethod
    def _bump(conn: Connection, name: str) -> None:
        conn.execute(sa.update(db.models).where(db.models.c.name == name)
                     .values(generation=db.models.c.generation + 1))
        if conn.dialect.name == "postgresql":  # wakes followers at commit (see serving)
            conn.execute(sa.text("SELECT pg_notify(:channel, :name)"),
                         {"channel": NOTIFY_CHANNEL, "name": name})

    @staticmethod
    def _audit(conn: Connection, actor: str, action: str, name: str | None, version: int | None,
               reason: str | None, details: Mapping[str, Any]) -> None:
        conn.execute(sa.insert(db.audit_log).values(
            at=_now(), actor=actor, action=action, name=name, version=version, reason=reason,
            details=_jsonable(details, "details")))


def _key(name: str, version: int) -> sa.ColumnElement[bool]:
    return sa.and_(db.model_versions.c.name == name, db.model_versions.c.version == version)


def _now() -> datetime:
    return datetime.now(UTC)


def _version(row: Any) -> ModelVersion:
    data = dict(row._mapping)
    data["created_at"] = db.aware(data["created_at"])
    return ModelVersion(**data)


def _jsonable(values: Mapping[str, Any], field: str) -> dict[str, Any]:
    """A plain-JSON copy of ``values`` (numpy scalars unwrapped); a clear error otherwise."""
    def plain(value: Any) -> Any:
        if hasattr(value, "item") and callable(value.item):
            return value.item()
        raise TypeError(f"{field}: {type(value).__name__} is not JSON-serialisable")

    try:
        return dict(json.loads(json.dumps(dict(values), default=plain, allow_nan=False)))
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from exc


def _default_cache(url: str) -> Path:
    """A per-store cache folder in the temporary directory (when no data_dir is given)."""
    tag = hashlib.sha256(url.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"driftloop-cache-{tag}"


@functools.cache
def code_revision() -> str | None:
    """The git commit of the running code, where available (DRIFTLOOP_CODE_REVISION wins)."""
    if revision := os.environ.get("DRIFTLOOP_CODE_REVISION"):
        return revision
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=2, check=True, cwd=Path(__file__).parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
