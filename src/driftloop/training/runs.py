"""RunStore: retraining runs and their transitions, persisted so that a run survives a restart.

A run is one pass through the loop's state machine::

    SNAPSHOTTING → TRAINING → EVALUATING → SHADOWING → PROMOTED | REJECTED → COOLDOWN → IDLE
    (FAILED from any step)

The orchestrator's state is its active run's state, or IDLE when there is none. At most
one run per model is active (a partial unique index, so two processes triggering at once
cannot both start one); triggers that arrive during a run are *attached* to it instead of
queueing a storm of runs. Every transition is one transaction: the run row and a
``run_events`` row change together or not at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from driftloop import db
from driftloop.errors import ConflictError


class LoopState(StrEnum):
    """The states of the loop; a str, so stored rows and JSON frames hold the plain name."""

    IDLE = "IDLE"
    SNAPSHOTTING = "SNAPSHOTTING"
    TRAINING = "TRAINING"
    EVALUATING = "EVALUATING"
    SHADOWING = "SHADOWING"
    PROMOTED = "PROMOTED"
    REJECTED = "REJECTED"
    COOLDOWN = "COOLDOWN"
    FAILED = "FAILED"


IDLE, SNAPSHOTTING, TRAINING = LoopState.IDLE, LoopState.SNAPSHOTTING, LoopState.TRAINING
EVALUATING, SHADOWING = LoopState.EVALUATING, LoopState.SHADOWING
PROMOTED, REJECTED = LoopState.PROMOTED, LoopState.REJECTED
COOLDOWN, FAILED = LoopState.COOLDOWN, LoopState.FAILED
#: The transitions the state machine allows (FAILED is reachable from every active state).
NEXT: dict[str, tuple[str, ...]] = {
    SNAPSHOTTING: (TRAINING,),
    TRAINING: (EVALUATING,),
    EVALUATING: (SHADOWING, REJECTED),
    SHADOWING: (PROMOTED, REJECTED),
    PROMOTED: (COOLDOWN,),
    REJECTED: (COOLDOWN,),
    COOLDOWN: (IDLE,),
}
TRIGGERS = ("drift", "manual", "schedule")
LOG_TAIL = 50


class RunStateError(ConflictError, RuntimeError):
    """A transition the state machine does not allow, or on a run that moved on."""


@dataclass(frozen=True)
class Trigger:
    """Why a run started (or was asked to): a drift alarm, a person, or the schedule."""

    kind: str
    reason: str
    at: float
    drift_event_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in TRIGGERS:
            raise ValueError(f"kind: must be one of {', '.join(TRIGGERS)}, got {self.kind!r}")

    @classmethod
    def now(cls, kind: str, reason: str, drift_event_id: str | None = None) -> Trigger:
        return cls(kind, reason, datetime.now(UTC).timestamp(), drift_event_id)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason, "at": self.at,
                "drift_event_id": self.drift_event_id}


@dataclass(frozen=True)
class Transition:
    from_state: str | None
    to_state: str
    at: datetime
    reason: str | None


@dataclass(frozen=True)
class Run:
    """One retraining run as stored; ``state`` is where it is now."""

    id: str
    model_name: str
    state: str
    active: bool
    outcome: str | None
    reason: str | None
    trigger: Trigger
    attached: tuple[Trigger, ...]
    created_at: datetime
    state_since: datetime
    finished_at: datetime | None
    attempt: int
    snapshot_id: str | None
    parent_version: int | None
    candidate_version: int | None
    evidence: dict[str, Any]
    transitions: tuple[Transition, ...] = ()
    log_tail: tuple[str, ...] = field(default=())

    def stages(self) -> dict[str, float]:
        """Seconds spent in each state the run has left (the last visit of a repeated one
        counts, as after a resume)."""
        spent: dict[str, float] = {}
        for before, after in zip(self.transitions, self.transitions[1:], strict=False):
            spent[before.to_state] = (after.at - before.at).total_seconds()
        return spent

    def to_dict(self) -> dict[str, Any]:
        """The shape of ``Run`` in driftloop/serving/schemas.py (the dashboard's contract)."""
        return {
            "id": self.id, "model": self.model_name, "state": self.state, "active": self.active,
            "outcome": self.outcome, "reason": self.reason, "trigger": self.trigger.to_dict(),
            "attached_triggers": len(self.attached),
            "started_at": self.created_at.timestamp(),
            "finished_at": self.finished_at.timestamp() if self.finished_at else None,
            "snapshot_id": self.snapshot_id, "parent_version": self.parent_version,
            "candidate_version": self.candidate_version,
            "transitions": [{"from": t.from_state, "to": t.to_state, "at": t.at.timestamp(),
                             "reason": t.reason} for t in self.transitions],
            "stages": self.stages(), "evidence": self.evidence,
            "log_tail": list(self.log_tail),
        }


@dataclass(frozen=True)
class TriggerResult:
    """What a trigger did: started ``run``, attached to it, or was ignored (``ignored``
    says why, e.g. the cooldown after the last run)."""

    run: Run | None
    attached: bool = False
    ignored: str | None = None


_runs = db.training_runs
_events = db.run_events


class RunStore:
    """Reads and writes runs; every write is one transaction."""

    def __init__(self, engine: Engine, model_name: str) -> None:
        self.engine = engine
        self.model_name = model_name

    # ------------------------------------------------------------------ triggers
    def trigger(self, trigger: Trigger, *, cooldown_s: float = 0.0) -> TriggerResult:
        """Start a run for ``trigger``, or attach it to the active one.

        A drift or scheduled trigger within ``cooldown_s`` of the last run's end is
        ignored, as is one while the active run cools down; a manual trigger ends a
        cooldown at once and starts a run (a person asked for it)."""
        for _ in range(3):  # another process may start a run between our read and insert
            try:
                with db.transaction(self.engine) as conn:
                    return self._trigger(conn, trigger, cooldown_s)
            except IntegrityError:
                continue
        raise RunStateError("could not start or join a run: another process keeps racing")

    def _trigger(self, conn: Connection, trigger: Trigger, cooldown_s: float) -> TriggerResult:
        active = self._active_row(conn)
        now = datetime.now(UTC)
        if active is not None and not (active.state == COOLDOWN and trigger.kind == "manual"):
            if active.state == COOLDOWN:
                return TriggerResult(self._get(conn, active.id), ignored="cooling down")
            conn.execute(sa.update(_runs).where(_runs.c.id == active.id).values(
                attached=[*active.attached, trigger.to_dict()], updated_at=now))
            self._event(conn, active.id, "log", None, None,
                        f"{trigger.kind} trigger attached: {trigger.reason}")
            return TriggerResult(self._get(conn, active.id), attached=True)
        if active is not None:  # a manual trigger ends the cooldown
            self._move(conn, active.id, COOLDOWN, IDLE, "cooldown ended by a manual trigger",
                       now)
        elif trigger.kind != "manual" and cooldown_s > 0:
            last = conn.execute(sa.select(sa.func.max(_runs.c.finished_at)).where(
                _runs.c.model_name == self.model_name)).scalar()
            if last is not None and now - db.aware(last) < timedelta(seconds=cooldown_s):
                return TriggerResult(None, ignored="cooling down after the last run")
        run_id = f"r-{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
        conn.execute(sa.insert(_runs).values(
            id=run_id, model_name=self.model_name, state=SNAPSHOTTING, active=True,
            trigger=trigger.to_dict(), attached=[], created_at=now, updated_at=now,
            state_since=now, attempt=0, evidence={}))
        self._event(conn, run_id, "transition", IDLE, SNAPSHOTTING,
                    f"{trigger.kind}: {trigger.reason}", now)
        return TriggerResult(self._get(conn, run_id))

    # ------------------------------------------------------------------ transitions
    def advance(self, run: Run, to_state: str, note: str, **values: Any) -> Run:
        """Move ``run`` from its state to ``to_state`` (checked against :data:`NEXT`) with
        ``note`` as the transition's reason, storing ``values`` (snapshot_id,
        candidate_version, evidence, outcome, ...) with it. Fails if the run moved on
        meanwhile (another leader), so no step runs twice."""
        if to_state != FAILED and to_state not in NEXT.get(run.state, ()):
            raise RunStateError(f"run {run.id}: {run.state} → {to_state} is not a transition")
        with db.transaction(self.engine) as conn:
            return self._move(conn, run.id, run.state, to_state, note,
                              datetime.now(UTC), **values)

    def update(self, run: Run, **values: Any) -> Run:
        """Store ``values`` on the run without changing its state (attempts, evidence)."""
        with db.transaction(self.engine) as conn:
            self._check_state(conn, run.id, run.state)
            conn.execute(sa.update(_runs).where(_runs.c.id == run.id).values(
                updated_at=datetime.now(UTC), **values))
            return self._get(conn, run.id)

    def log(self, run_id: str, line: str) -> None:
        with db.transaction(self.engine) as conn:
            self._event(conn, run_id, "log", None, None, line)

    def _move(self, conn: Connection, run_id: str, from_state: str, to_state: str,
              note: str, now: datetime, **values: Any) -> Run:
        self._check_state(conn, run_id, from_state)
        ends = to_state in (IDLE, FAILED)
        if ends:
            values.setdefault("finished_at", now)
            values["active"] = False
        if to_state == FAILED:
            values.setdefault("outcome", "failed")
            values.setdefault("reason", note)
        conn.execute(sa.update(_runs).where(_runs.c.id == run_id).values(
            state=to_state, updated_at=now, state_since=now, attempt=values.pop("attempt", 0),
            **values))
        self._event(conn, run_id, "transition", from_state, to_state, note, now)
        return self._get(conn, run_id)

    def _check_state(self, conn: Connection, run_id: str, expected: str) -> None:
        query = sa.select(_runs.c.state).where(_runs.c.id == run_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        state = conn.execute(query).scalar()
        if state != expected:
            raise RunStateError(f"run {run_id} is {state}, not {expected}: another process "
                                "moved it on")

    @staticmethod
    def _event(conn: Connection, run_id: str, kind: str, from_state: str | None,
               to_state: str | None, message: str | None, at: datetime | None = None) -> None:
        conn.execute(sa.insert(_events).values(run_id=run_id, at=at or datetime.now(UTC),
                                               kind=kind, from_state=from_state,
                                               to_state=to_state, message=message))

    # ------------------------------------------------------------------ reads
    def active(self) -> Run | None:
        with self.engine.connect() as conn:
            row = self._active_row(conn)
            return None if row is None else self._get(conn, row.id)

    def get(self, run_id: str) -> Run:
        with self.engine.connect() as conn:
            return self._get(conn, run_id)

    def list(self, limit: int = 20) -> list[Run]:
        """The newest runs first."""
        with self.engine.connect() as conn:
            ids = conn.execute(sa.select(_runs.c.id).where(
                _runs.c.model_name == self.model_name).order_by(
                _runs.c.created_at.desc(), _runs.c.id.desc()).limit(limit)).scalars().all()
            return [self._get(conn, run_id) for run_id in ids]

    def _active_row(self, conn: Connection) -> Any:
        return conn.execute(sa.select(_runs).where(
            _runs.c.model_name == self.model_name, _runs.c.active)).one_or_none()

    def _get(self, conn: Connection, run_id: str) -> Run:
        row = conn.execute(sa.select(_runs).where(_runs.c.id == run_id)).one_or_none()
        if row is None:
            raise LookupError(f"no run {run_id!r}")
        events = conn.execute(sa.select(_events).where(_events.c.run_id == run_id)
                              .order_by(_events.c.id)).all()
        transitions = tuple(Transition(e.from_state, e.to_state, db.aware(e.at), e.message)
                            for e in events if e.kind == "transition")
        logs = tuple(e.message or "" for e in events if e.kind == "log")[-LOG_TAIL:]
        return Run(
            id=row.id, model_name=row.model_name, state=row.state, active=bool(row.active),
            outcome=row.outcome, reason=row.reason, trigger=_trigger(row.trigger),
            attached=tuple(_trigger(t) for t in row.attached),
            created_at=db.aware(row.created_at), state_since=db.aware(row.state_since),
            finished_at=db.aware(row.finished_at) if row.finished_at else None,
            attempt=row.attempt, snapshot_id=row.snapshot_id,
            parent_version=row.parent_version, candidate_version=row.candidate_version,
            evidence=dict(row.evidence), transitions=transitions, log_tail=logs)


def _trigger(data: Mapping[str, Any]) -> Trigger:
    return Trigger(data["kind"], data["reason"], data["at"], data.get("drift_event_id"))
