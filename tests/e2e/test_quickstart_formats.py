"""The quickstart with an XGBoost, a LightGBM and an MLflow model in place of the
scikit-learn pipeline: the own-model page's training and push blocks, the quickstart's
serving, traffic and labels, verbatim. Each retrain keeps the champion's kind of model."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.ensemble import RandomForestClassifier
from tests.e2e.quickstart import run_quickstart

from driftloop.models.boosters import BoosterModel

pytest.importorskip("xgboost")
pytest.importorskip("lightgbm")
pytest.importorskip("mlflow")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["xgboost", "lightgbm"])
def test_a_booster_is_retrained_natively_and_promoted(tmp_path: Path, fmt: str) -> None:
    outcome = run_quickstart(tmp_path, fmt)
    assert outcome.champion.version == 2 and outcome.champion.framework == fmt
    first, promoted = outcome.first, outcome.promoted
    assert isinstance(promoted, BoosterModel) and promoted.framework == fmt
    assert promoted.classes == first.classes == tuple(range(10))
    assert promoted.params == first.params and promoted.rounds == first.rounds == 40
    train = "xgboost.train" if fmt == "xgboost" else "lightgbm.train"
    assert any(f"with {train}: the champion's parameters" in line
               for line in outcome.run_log)


@pytest.mark.slow
def test_an_mlflow_model_folder_is_retrained_as_its_estimator(tmp_path: Path) -> None:
    outcome = run_quickstart(tmp_path, "mlflow")
    assert outcome.champion.version == 2
    assert outcome.first.get_params() == outcome.promoted.get_params()
    assert isinstance(outcome.promoted, RandomForestClassifier)
    assert any("cloned and refitted (an ensemble" in line for line in outcome.run_log)
