"""A real champion to serve: a scikit-learn pipeline trained on the bundled breast-cancer
data, registered with its training snapshot, in a fresh SQLite registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from driftloop.config import Settings
from driftloop.data.snapshots import SnapshotStore
from driftloop.registry import ModelRegistry

NUMERIC = ["mean radius", "mean texture", "mean smoothness", "worst area"]
FEATURES = [*NUMERIC, "size"]


def cancer_frame() -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True).frame
    frame = data[NUMERIC].copy()
    frame["size"] = pd.qcut(data["mean area"], 3, labels=["small", "medium", "large"]).astype(str)
    frame["label"] = data["target"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    frame["event_timestamp"] = [start + timedelta(minutes=i) for i in range(len(frame))]
    frame["request_id"] = [f"train-{i}" for i in range(len(frame))]
    return frame


def pipeline(seed: int = 0, c: float = 1.0) -> object:
    encode = ColumnTransformer([("num", StandardScaler(), NUMERIC),
                                ("cat", OneHotEncoder(handle_unknown="ignore"), ["size"])])
    return make_pipeline(encode, LogisticRegression(C=c, random_state=seed, max_iter=500))


def push(reg: ModelRegistry, frame: pd.DataFrame, snapshot_id: str, sha: str,
         c: float = 1.0) -> int:
    model = pipeline(c=c).fit(frame[FEATURES], frame["label"])  # type: ignore[attr-defined]
    return reg.push_candidate("cancer", model, dataset=(snapshot_id, sha), params={"C": c}).version


def served_settings_in(tmp_path: Path, database_url: str = "") -> Settings:
    frame = cancer_frame()
    settings = Settings(model_name="cancer", data_dir=tmp_path, admin_token="s3cret",
                        max_wait_ms=0.5, drift_window=200, drift_panes=2,
                        database_url=database_url)
    reg = ModelRegistry.open(settings.database_url, artifacts=tmp_path)
    snap = SnapshotStore(tmp_path, engine=reg.engine).write(frame, holdout_fraction=0.2)
    train = pd.read_parquet(snap.train_path)
    version = push(reg, train, snap.id, snap.sha256)
    reg.promote_candidate("cancer", version)
    reg.engine.dispose()
    return settings


def example_rows(n: int, seed: int = 0) -> list[dict[str, object]]:
    frame = cancer_frame()
    rows = frame.sample(n, replace=True, random_state=seed)[FEATURES]
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
            for r in rows.to_dict(orient="records")]
