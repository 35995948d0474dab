"""Shared pieces of the registry tests: a tiny real model and the consistency check."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from driftloop import db
from driftloop.registry import ModelRegistry


def small_model(seed: int = 0) -> LogisticRegression:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 3))
    return LogisticRegression().fit(x, (x[:, 0] + rng.normal(0, 0.5, 60)) > 0)


def assert_consistent(reg: ModelRegistry, name: str) -> None:
    """What must hold after any crash: every row's artifact exists and verifies; at most
    one champion, exactly one once any version was ever promoted, and the champion alias
    agrees with it; the candidate alias points at a candidate."""
    versions = reg.list_versions(name)
    for v in versions:
        reg.artifacts.verify(v.artifact_path, v.sha256)
    champions = [v.version for v in versions if v.status == "champion"]
    with reg.engine.connect() as conn:
        crowned = conn.execute(sa.select(sa.func.count()).select_from(db.champion_history)
                               .where(db.champion_history.c.name == name)).scalar_one()
    assert len(champions) == (1 if crowned else 0), champions
    champion = reg.get_champion(name)
    assert (champion.version if champion else None) == (champions[0] if champions else None)
    candidate = reg.get_candidate(name)
    assert candidate is None or candidate.status == "candidate"
