"""MLflow models read without MLflow's loaders: the sklearn (skops), xgboost and lightgbm
flavours of a model folder, and models:/ URIs from a local MLflow registry (a file store in
a temporary folder: no network)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression

from driftloop.cli import main
from driftloop.models.base import installed_adapters
from driftloop.models.boosters import BoosterModel
from driftloop.models.mlflow_model import read_mlflow_model
from driftloop.registry import ModelRegistry

mlflow = pytest.importorskip("mlflow")
mlflow_lightgbm = pytest.importorskip("mlflow.lightgbm")
mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
mlflow_xgboost = pytest.importorskip("mlflow.xgboost")
xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def wine() -> tuple[pd.DataFrame, pd.Series]:
    frame = load_wine(as_frame=True).frame
    return frame.drop(columns="target"), frame["target"]


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm-sklearn", "lightgbm-booster"])
def test_a_booster_flavour_is_read_natively(tmp_path: Path, flavor: str,
                                            wine: tuple[pd.DataFrame, pd.Series]) -> None:
    x, y = wine
    folder = tmp_path / "model"
    if flavor == "xgboost":
        model = xgb.XGBClassifier(n_estimators=10).fit(x, y)
        mlflow_xgboost.save_model(model, folder)
        expected = model.predict_proba(x)
    elif flavor == "lightgbm-sklearn":  # saved with skops: lightgbm types trusted too
        model = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(x, y)
        mlflow_lightgbm.save_model(model, folder)
        expected = model.predict_proba(x)
    else:
        booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1},
                            lgb.Dataset(x, y), 10)
        mlflow_lightgbm.save_model(booster, folder)
        expected = booster.predict(x)
    model, kind = read_mlflow_model(folder, installed_adapters(), labels=y.tolist(),
                                    features=list(x.columns))
    assert isinstance(model, BoosterModel) and kind == flavor.split("-", maxsplit=1)[0]
    np.testing.assert_allclose(model.predict_scores(x), expected, rtol=1e-5)


@pytest.mark.slow
def test_models_uris_come_from_the_registry_and_bad_ones_change_nothing(
        tmp_path: Path, wine: tuple[pd.DataFrame, pd.Series],
        monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = wine
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file:{tmp_path / 'mlruns'}")
    mlflow.set_tracking_uri(f"file:{tmp_path / 'mlruns'}")
    model = LogisticRegression(max_iter=5000).fit(x, y)
    with mlflow.start_run():
        mlflow_sklearn.log_model(model, name="model", registered_model_name="wine",
                                 serialization_format="skops")
    mlflow.MlflowClient().set_registered_model_alias("wine", "production", 1)
    x.assign(cultivar=y).to_parquet(tmp_path / "train.parquet")
    data = tmp_path / "artifacts"

    def push(uri: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, [
            "models", "push", "wine", uri, "--reference", str(tmp_path / "train.parquet"),
            "--label", "cultivar", "--data-dir", str(data)])
        return result.exit_code, result.output

    code, out = push("models:/wine@production")
    assert code == 0, out
    assert "wine v1 is the champion (mlflow/sklearn" in out
    code, out = push("models:/wine/1")
    assert code == 0 and "wine v2 is the candidate" in out, out
    before = sorted(p.name for p in (data / "models" / "wine").iterdir())
    code, out = push("models:/wine@staging")
    assert code == 1 and len(out.strip().splitlines()) == 1, out
    assert "models:/wine@staging: not found in the MLflow registry" in out
    assert sorted(p.name for p in (data / "models" / "wine").iterdir()) == before
    registry = ModelRegistry.open(f"sqlite:///{data / 'driftloop.db'}", artifacts=data)
    assert [v.params["pushed_from"] for v in registry.list_versions("wine")] == [
        "models:/wine@production", "models:/wine/1"]
    assert os.environ["MLFLOW_TRACKING_URI"].startswith("file:")
