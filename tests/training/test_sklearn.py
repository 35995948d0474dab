"""The built-in trainer retrains the champion's own estimator, says how in the run log, and
falls back to LogisticRegression only when nothing better is known; the worker hands a
booster champion to its native trainer."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from driftloop.config import Settings
from driftloop.data.snapshots import EVENT_TIMESTAMP, Snapshot, SnapshotStore
from driftloop.models.boosters import BoosterModel
from driftloop.training.boosters import BoosterTrainer
from driftloop.training.sklearn import DEFAULT_TRAINER, SklearnTrainer, feature_frame
from driftloop.training.worker import TrainingJob, choose_trainer


@pytest.fixture
def snapshot(tmp_path: Path) -> Snapshot:
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    frame["request_id"] = [f"r{i}" for i in range(len(frame))]
    frame[EVENT_TIMESTAMP] = pd.date_range("2026-01-01", periods=len(frame), freq="s", tz="UTC")
    return SnapshotStore(tmp_path).write(frame, label_column="cultivar")


def champion(estimator: object, rows: slice | None = None) -> Pipeline:
    """``estimator`` in a pipeline fitted on 120 random rows of wine (or on ``rows``)."""
    frame = load_wine(as_frame=True).frame
    frame = frame.iloc[rows] if rows is not None else frame.sample(120, random_state=1)
    model = make_pipeline(StandardScaler(), estimator)
    return model.fit(frame.drop(columns="target"), frame["target"])


def train(snapshot: Snapshot, parent: object, caplog: pytest.LogCaptureFixture,
          **options: object) -> tuple[object, str]:
    caplog.clear()
    caplog.set_level(logging.INFO, logger="driftloop.training")
    model = SklearnTrainer(**options).train(snapshot, parent, {})  # type: ignore[arg-type]
    return model, " | ".join(r.getMessage() for r in caplog.records)


def test_the_settings_default_is_the_champion_following_trainer() -> None:
    assert Settings().trainer == DEFAULT_TRAINER


@pytest.mark.parametrize(("estimator", "how"), [
    (LogisticRegression(C=0.5, max_iter=500), "warm start from its fitted coefficients"),
    (MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0),
     "warm start from its fitted coefficients"),
    (RandomForestClassifier(n_estimators=7, random_state=0),
     "cloned and refitted (an ensemble: warm start would only add members)"),
])
def test_a_scikit_learn_champion_is_retrained_as_itself(
        snapshot: Snapshot, caplog: pytest.LogCaptureFixture, estimator: object,
        how: str) -> None:
    parent = champion(estimator)
    model, log = train(snapshot, parent, caplog)
    assert isinstance(model, Pipeline) and model is not parent
    final, original = model.steps[-1][1], parent.steps[-1][1]
    assert type(final) is type(original)
    expected = {k: v for k, v in original.get_params().items() if k != "warm_start"}
    assert {k: v for k, v in final.get_params().items() if k != "warm_start"} == expected
    assert [type(s) for _, s in model.steps] == [type(s) for _, s in parent.steps]
    assert f"the champion's estimator, {how}" in log
    assert model.score(*_xy(snapshot)) > 0.9
    # The parent itself is untouched: a warm start works on a copy.
    assert parent.steps[-1][1].get_params().get("warm_start", False) is False


def test_a_warm_start_that_cannot_work_refits_from_scratch(
        snapshot: Snapshot, caplog: pytest.LogCaptureFixture) -> None:
    """wine is sorted by class: a champion fitted on its first 120 rows never saw the third
    cultivar, so its coefficients cannot seed a three-class fit."""
    parent = champion(LogisticRegression(max_iter=500), slice(0, 120))
    model, log = train(snapshot, parent, caplog)
    assert "warm start failed" in log and "refitting from scratch" in log
    assert list(model.classes_) == [0, 1, 2]  # type: ignore[attr-defined]


def test_without_a_scikit_learn_champion_the_default_says_so(
        snapshot: Snapshot, caplog: pytest.LogCaptureFixture) -> None:
    model, log = train(snapshot, None, caplog)
    assert isinstance(model.steps[-1][1], LogisticRegression)  # type: ignore[attr-defined]
    assert "no champion, not a scikit-learn estimator: the default LogisticRegression" in log


def test_a_named_estimator_still_wins(snapshot: Snapshot,
                                      caplog: pytest.LogCaptureFixture) -> None:
    parent = champion(LogisticRegression(max_iter=500))
    model, log = train(snapshot, parent, caplog,
                       estimator="sklearn.ensemble.RandomForestClassifier",
                       params={"n_estimators": 5})
    assert isinstance(model.steps[-1][1], RandomForestClassifier)  # type: ignore[attr-defined]
    assert "the configured estimator, from scratch" in log


def test_the_worker_hands_a_booster_champion_to_its_native_trainer(tmp_path: Path) -> None:
    job = TrainingJob(trainer=DEFAULT_TRAINER, options={}, params={}, data_dir=str(tmp_path),
                      database_url="sqlite://", model_name="m", snapshot_id="s",
                      out_dir=str(tmp_path))
    booster = BoosterModel("xgboost", object(), ("a",), "regression")
    assert isinstance(choose_trainer(job, booster), BoosterTrainer)
    assert isinstance(choose_trainer(job, champion(LogisticRegression())), SklearnTrainer)
    configured = TrainingJob(**{**job.__dict__, "options": {"estimator":
                                                            "sklearn.svm.SVC"}})
    assert isinstance(choose_trainer(configured, booster), SklearnTrainer)


def _xy(snapshot: Snapshot) -> tuple[pd.DataFrame, pd.Series]:
    return feature_frame(snapshot)
