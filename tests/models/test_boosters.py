"""XGBoost and LightGBM models from their native files: read, stored in the registry
(checksummed, no pickle), served with the right labels, and retrained natively."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from driftloop.data.snapshots import EVENT_TIMESTAMP, SnapshotStore
from driftloop.models.base import UntrustedArtifactError, adapter_named, installed_adapters
from driftloop.models.boosters import BoosterModel
from driftloop.registry import ModelRegistry
from driftloop.training.boosters import BoosterTrainer

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

NAMES = {0: "barolo", 1: "grignolino", 2: "barbera"}


@pytest.fixture(scope="module")
def wine() -> tuple[pd.DataFrame, pd.Series]:
    frame = load_wine(as_frame=True).frame
    return frame.drop(columns="target"), frame["target"].map(NAMES)


def native_file(framework: str, task: str, folder: Path, x: pd.DataFrame,
                y: pd.Series) -> tuple[Path, np.ndarray]:
    """A model trained through the framework's scikit-learn API, saved natively, and its
    own probabilities (or predictions) on ``x``."""
    if task == "binary":
        y = (y == "barolo").astype(int)
    if framework == "xgboost":
        codes = {label: i for i, label in enumerate(sorted(y.unique()))}
        model = xgb.XGBClassifier(n_estimators=15, max_depth=3)
        model.fit(x, y.map(codes))
        path = folder / "model.json"
        model.save_model(path)
    else:
        model = lgb.LGBMClassifier(n_estimators=15, verbose=-1).fit(x, y)
        path = folder / "model.txt"
        model.booster_.save_model(path)
    return path, model.predict_proba(x)


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_a_native_file_round_trips_through_the_registry_with_its_labels(
        tmp_path: Path, wine: tuple[pd.DataFrame, pd.Series], framework: str,
        task: str) -> None:
    x, y = wine
    path, proba = native_file(framework, task, tmp_path, x, y)
    labels = (y == "barolo").astype(int) if task == "binary" else y
    adapter = adapter_named(framework, installed_adapters())
    model = adapter.read_file(path, labels.tolist(), list(x.columns))  # type: ignore[attr-defined]
    assert isinstance(model, BoosterModel) and model.task == task
    assert model.features == tuple(x.columns)
    registry = ModelRegistry.open(f"sqlite:///{tmp_path / 'r.db'}", artifacts=tmp_path)
    version = registry.push_candidate("wine", model)
    assert version.framework == framework
    assert not list((tmp_path / version.artifact_path).glob("*.pkl"))
    loaded = registry.load("wine", version.version)
    rows = x.head(40).to_dict(orient="records")
    outputs = loaded.predict_batch(rows)
    expected = np.asarray(sorted(labels.unique()))[proba[:40].argmax(axis=1)]
    assert [o["prediction"] for o in outputs] == expected.tolist()
    if task == "binary":
        np.testing.assert_allclose([o["score"] for o in outputs], proba[:40, 1], rtol=1e-5)
    else:  # the string labels come back, though the file holds class indices only
        assert {o["prediction"] for o in outputs} <= set(NAMES.values())


def test_a_tampered_manifest_is_refused(tmp_path: Path,
                                        wine: tuple[pd.DataFrame, pd.Series]) -> None:
    x, y = wine
    path, _ = native_file("lightgbm", "multiclass", tmp_path, x, y)
    adapter = adapter_named("lightgbm", installed_adapters())
    model = adapter.read_file(path, y.tolist(), list(x.columns))  # type: ignore[attr-defined]
    folder = tmp_path / "saved"
    folder.mkdir()
    adapter.save(model, folder)
    (folder / "booster.json").write_text('{"format": "driftloop.booster/1", '
                                         '"framework": "xgboost", "native": "model.txt"}')
    with pytest.raises(UntrustedArtifactError, match="not a lightgbm booster"):
        adapter.load(folder)


def test_a_class_count_that_does_not_match_the_labels_is_refused(
        tmp_path: Path, wine: tuple[pd.DataFrame, pd.Series]) -> None:
    x, y = wine
    path, _ = native_file("lightgbm", "binary", tmp_path, x, y)
    adapter = adapter_named("lightgbm", installed_adapters())
    with pytest.raises(ValueError, match="predicts 2 classes but the label column holds 3"):
        adapter.read_file(path, y.tolist(), list(x.columns))  # type: ignore[attr-defined]


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_a_retrain_uses_the_native_api_with_the_champions_parameters(
        tmp_path: Path, wine: tuple[pd.DataFrame, pd.Series], framework: str,
        caplog: pytest.LogCaptureFixture) -> None:
    x, y = wine
    path, _ = native_file(framework, "multiclass", tmp_path, x, y)
    adapter = adapter_named(framework, installed_adapters())
    parent = adapter.read_file(path, y.tolist(), list(x.columns))  # type: ignore[attr-defined]
    # New data: the champion's classes, features reversed in the file (names matter).
    frame = x.iloc[:, ::-1].assign(cultivar=y.to_numpy(), request_id=[f"r{i}" for i in
                                                                       range(len(x))])
    frame[EVENT_TIMESTAMP] = pd.date_range("2026-01-01", periods=len(frame), freq="s",
                                           tz="UTC")
    snapshot = SnapshotStore(tmp_path).write(frame, label_column="cultivar")
    caplog.set_level("INFO", logger="driftloop.training")
    model = BoosterTrainer().train(snapshot, parent, {})
    assert isinstance(model, BoosterModel) and model.framework == framework
    assert model.classes == parent.classes and model.rounds == parent.rounds == 15
    assert model.params == parent.params
    if framework == "xgboost":
        assert parent.params["max_depth"] == 3 and parent.params["num_class"] == 3
    else:
        assert parent.params["num_leaves"] == 31 and parent.params["num_class"] == 3
    train = "xgboost.train" if framework == "xgboost" else "lightgbm.train"
    assert any(f"with {train}: the champion's parameters" in r.getMessage()
               for r in caplog.records)
    accuracy = np.mean([o["prediction"] == label for o, label in zip(
        model.predict_batch(x.to_dict(orient="records")), y, strict=True)])
    assert accuracy > 0.9
