"""ModelRegistry on SQLite and PostgreSQL: versions, promotion, rollback, lineage, audit."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
import sqlalchemy as sa
from tests.registry.helpers import assert_consistent, small_model

from driftloop import db
from driftloop.models import UnsupportedModelError, UntrustedArtifactError
from driftloop.registry import (
    ArtifactIntegrityError,
    ModelNotFoundError,
    ModelRegistry,
    PromotionConflictError,
)


@pytest.fixture
def reg(db_url: str, tmp_path: Path) -> ModelRegistry:
    return ModelRegistry.open(db_url, artifacts=tmp_path / "artifacts")


def test_push_records_everything_and_loads_the_same_model(reg: ModelRegistry) -> None:
    model = small_model()
    v1 = reg.push_candidate("churn", model, dataset=("20261127T000000Z-ab12", "f" * 64),
                            params={"C": 1.0}, metrics={"holdout_accuracy": np.float64(0.9)},
                            run_id="run-1", drift_event_id="drift-1")
    assert (v1.version, v1.status, v1.framework) == (1, "candidate", "sklearn")
    assert v1.metrics == {"holdout_accuracy": 0.9} and v1.params == {"C": 1.0}
    assert v1.dataset_id == "20261127T000000Z-ab12" and v1.created_at.tzinfo is not None
    assert v1.artifact_path == "models/churn/1" and len(v1.sha256) == 64 and v1.size_bytes > 0
    assert (reg.artifacts.root / "models/churn/1/model.skops").is_file()
    loaded = reg.load("churn", 1)
    x = np.random.default_rng(1).normal(size=(20, 3))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert reg.get_candidate("churn").version == 1  # type: ignore[union-attr]
    assert reg.get_champion("churn") is None


def test_promotion_archives_the_old_champion_and_rollback_returns_to_it(
    reg: ModelRegistry,
) -> None:
    for seed in range(3):
        reg.push_candidate("churn", small_model(seed))
    reg.promote_candidate("churn", 1)
    generation = reg.generation("churn")
    reg.promote_candidate("churn", 2, reason="better holdout")
    assert reg.generation("churn") > generation
    assert [v.status for v in reg.list_versions("churn")] == ["archived", "champion", "candidate"]
    reg.promote_candidate("churn", 3)
    assert reg.rollback("churn", reason="bad canary").version == 2
    assert reg.rollback("churn").version == 1
    assert [v.status for v in reg.list_versions("churn")] == ["champion", "archived", "archived"]
    with pytest.raises(PromotionConflictError, match="no previous champion"):
        reg.rollback("churn")
    actions = [(e.action, e.version) for e in reg.audit("churn")]
    assert actions[:3] == [("rollback", 1), ("rollback", 2), ("promote", 3)]
    assert reg.audit("churn")[-1].action == "push_candidate"
    assert_consistent(reg, "churn")


def test_only_candidates_are_promoted_and_stale_generations_lose(reg: ModelRegistry) -> None:
    reg.push_candidate("m", small_model())
    reg.push_candidate("m", small_model(1))
    seen = reg.generation("m")
    reg.promote_candidate("m", 1)
    with pytest.raises(PromotionConflictError, match="champion, not a candidate"):
        reg.promote_candidate("m", 1)
    with pytest.raises(PromotionConflictError, match="generation"):
        reg.promote_candidate("m", 2, expected_generation=seen)
    reg.reject_candidate("m", 2, reason="worse on shadow")
    with pytest.raises(PromotionConflictError, match="rejected"):
        reg.promote_candidate("m", 2)
    assert reg.get_candidate("m") is None
    with pytest.raises(ModelNotFoundError):
        reg.promote_candidate("m", 9)
    with pytest.raises(ModelNotFoundError):
        reg.promote_candidate("nope", 1)


def test_score_candidate_merges_metrics(reg: ModelRegistry) -> None:
    reg.push_candidate("m", small_model(), metrics={"a": 1})
    v = reg.score_candidate("m", 1, {"shadow_delta": 0.02, "n": 400}, actor="orchestrator")
    assert v.metrics == {"a": 1, "shadow_delta": 0.02, "n": 400}
    assert reg.audit("m")[0].actor == "orchestrator"
    with pytest.raises(ValueError, match="metrics"):
        reg.score_candidate("m", 1, {"bad": float("nan")})


def test_a_corrupted_artifact_is_refused_before_deserialising(reg: ModelRegistry) -> None:
    v = reg.push_candidate("m", small_model())
    artifact = reg.artifacts.root / v.artifact_path / "model.skops"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="corrupt"):
        reg.load("m", 1)
    (reg.artifacts.root / v.artifact_path / "extra.bin").write_bytes(b"x")
    artifact.unlink()
    with pytest.raises(ArtifactIntegrityError):
        reg.load("m", 1)


def test_untrusted_types_and_unknown_models_are_refused(
    reg: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UnsupportedModelError, match="no adapter"):
        reg.push_candidate("m", object())
    reg.push_candidate("m", small_model())
    monkeypatch.setattr(sio, "get_untrusted_types", lambda **_: ["evil.module.Thing"])
    with pytest.raises(UntrustedArtifactError, match=r"evil\.module\.Thing"):
        reg.load("m", 1)


@pytest.mark.parametrize("name", ["", "../etc", "a/b", "x" * 101, ".hidden", "a..b"])
def test_model_names_are_safe_folder_names(reg: ModelRegistry, name: str) -> None:
    with pytest.raises(ValueError, match="name"):
        reg.push_candidate(name, small_model())


def test_lineage_links_versions_datasets_runs_and_drift_events(reg: ModelRegistry) -> None:
    with db.transaction(reg.engine) as conn:
        conn.execute(sa.insert(db.dataset_snapshots).values(
            id="d1", created_at=datetime.now(UTC), path="datasets/d1", rows=120,
            sha256="a" * 64, parent_id=None, manifest={}))
    reg.push_candidate("m", small_model(), dataset=("d1", "a" * 64))
    reg.promote_candidate("m", 1)
    reg.push_candidate("m", small_model(1), parent=1, dataset=("d2", "b" * 64), run_id="r2",
                       drift_event_id="e2")
    graph = reg.lineage("m")
    ids = {n["id"]: n["type"] for n in graph["nodes"]}
    assert ids == {"model:m:1": "model", "model:m:2": "model", "dataset:d1": "dataset",
                   "dataset:d2": "dataset", "run:r2": "run", "drift:e2": "drift_event"}
    edges = {(e["source"], e["target"], e["kind"]) for e in graph["edges"]}
    assert edges == {("model:m:1", "model:m:2", "parent"),
                     ("dataset:d1", "model:m:1", "trained_on"),
                     ("dataset:d2", "model:m:2", "trained_on"),
                     ("run:r2", "model:m:2", "produced"),
                     ("drift:e2", "run:r2", "triggered")}
    d1 = next(n for n in graph["nodes"] if n["id"] == "dataset:d1")
    assert (d1["rows"], d1["path"], d1["sha256"]) == (120, "datasets/d1", "a" * 64)
    with pytest.raises(ModelNotFoundError):
        reg.push_candidate("m", small_model(), parent=7)


def test_concurrent_pushes_from_threads_get_distinct_versions(reg: ModelRegistry) -> None:
    errors: list[BaseException] = []

    def push(seed: int) -> None:
        try:
            reg.push_candidate("m", small_model(seed))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [v.version for v in reg.list_versions("m")] == list(range(1, 9))
    assert_consistent(reg, "m")


def test_concurrent_promotions_exactly_one_wins(reg: ModelRegistry) -> None:
    for seed in range(4):
        reg.push_candidate("m", small_model(seed))
    seen = reg.generation("m")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def promote(version: int) -> None:
        barrier.wait()
        try:
            reg.promote_candidate("m", version, expected_generation=seen)
            outcomes.append("won")
        except PromotionConflictError:
            outcomes.append("lost")

    threads = [threading.Thread(target=promote, args=(v,)) for v in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
    assert_consistent(reg, "m")


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_symbolic_links_in_an_artifact_folder_are_refused(reg: ModelRegistry, tmp_path: Path,
                                                          kind: str) -> None:
    """A link to an identical file outside passes any checksum, and can be repointed; a
    linked folder is not hashed at all."""
    v = reg.push_candidate("m", small_model())
    folder = reg.artifacts.root / v.artifact_path
    outside = tmp_path / "outside"
    outside.mkdir()
    if kind == "file":
        model_file = next(p for p in folder.iterdir() if p.suffix == ".skops")
        copy = outside / model_file.name
        copy.write_bytes(model_file.read_bytes())
        model_file.unlink()
        model_file.symlink_to(copy)
    else:
        (folder / "extra").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ArtifactIntegrityError, match="symbolic link"):
        reg.load("m", v.version)
