"""`driftloop models push`: a user's own model becomes a servable version, and bad input
gets a one-line error naming what to fix while the registry stays exactly as it was."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import skops.io as sio
from click.testing import CliRunner
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.data.snapshots import SnapshotStore
from driftloop.models.push import PushRequest
from driftloop.models.push import push as push_model
from driftloop.registry import ModelRegistry
from driftloop.serving.compose import build_service


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """scikit-learn's wine data with the label in `cultivar`, a pipeline fitted on it (skops),
    and variants of both for the error cases."""
    folder = tmp_path_factory.mktemp("wine")
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    features = frame.drop(columns="cultivar")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(features, frame["cultivar"])
    sio.dump(model, folder / "model.skops")
    frame.to_parquet(folder / "train.parquet")
    frame.to_csv(folder / "train.csv", index=False)
    frame.drop(columns="magnesium").to_parquet(folder / "no-magnesium.parquet")
    unscorable = frame.astype({"alcohol": object})
    unscorable.loc[:, "alcohol"] = "high"  # a string where the pipeline scales numbers
    unscorable.to_parquet(folder / "unscorable.parquet")
    gaps = frame.astype({"cultivar": "float64"})
    gaps.loc[:2, "cultivar"] = None
    gaps.to_parquet(folder / "gaps.parquet")
    (folder / "model.pkl").write_bytes(b"not really a pickle")
    (folder / "broken.skops").write_bytes(b"not a zip archive")
    mlflow_dir = folder / "mlflow-pickled"
    mlflow_dir.mkdir()
    (mlflow_dir / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
        "    model_path: model.pkl\n  sklearn:\n    pickled_model: model.pkl\n"
        "    serialization_format: cloudpickle\n")
    names = {"model": "model.skops", "train": "train.parquet", "train.csv": "train.csv",
             "no-magnesium": "no-magnesium.parquet", "unscorable": "unscorable.parquet",
             "gaps": "gaps.parquet", "model.pkl": "model.pkl", "broken": "broken.skops",
             "mlflow-pickled": "mlflow-pickled"}
    return {key: folder / name for key, name in names.items()}


def push(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["models", "push", *args, "--data-dir", str(data_dir)])
    return result.exit_code, result.output


def tree_state(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and its sha256: what "unchanged" means on disk. The
    database's own -wal/-shm files come and go with connections and are left out."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def registry_state(data_dir: Path) -> dict[str, object]:
    registry = ModelRegistry.open(f"sqlite:///{data_dir / 'driftloop.db'}", artifacts=data_dir)
    state = {"versions": [v.to_dict() for v in registry.list_versions("wine")],
             "audit": [e.id for e in registry.audit()],
             "snapshots": [s.id for s in SnapshotStore(data_dir, engine=registry.engine).list()]}
    registry.engine.dispose()
    return state


def test_a_pushed_pipeline_is_the_champion_with_its_reference_then_serves_unconfigured(
        tmp_path: Path, wine: dict[str, Path]) -> None:
    data = tmp_path / "artifacts"
    code, out = push(data, "wine", str(wine["model"]), "--reference", str(wine["train"]),
                     "--label", "cultivar", "--reason", "first cut")
    assert code == 0, out
    assert "wine v1 is the champion (sklearn, 13 features, label 'cultivar'" in out
    registry = ModelRegistry.open(f"sqlite:///{data / 'driftloop.db'}", artifacts=data)
    champion = registry.get_champion("wine")
    assert champion is not None and champion.framework == "sklearn"
    assert champion.params["label_column"] == "cultivar"
    assert champion.params["trainer"] == "driftloop.training.sklearn:SklearnTrainer"
    snapshot = SnapshotStore(data, engine=registry.engine).verify(champion.dataset_id or "")
    assert snapshot.manifest["columns"]["label"] == "cultivar"
    assert snapshot.rows == 178
    assert isinstance(registry.load("wine", 1), Pipeline)
    assert registry.audit("wine")[0].reason == "first cut"

    # A second push is a candidate, from CSV this time.
    code, out = push(data, "wine", str(wine["model"]), "--reference", str(wine["train.csv"]),
                     "--label", "cultivar")
    assert code == 0, out
    assert "wine v2 is the candidate" in out
    assert registry.get_candidate("wine").version == 2  # type: ignore[union-attr]
    registry.engine.dispose()

    # The server needs nothing but the name and the folder: the label column is not taken
    # for a feature (the settings still say "label").
    service = build_service(Settings(model_name="wine", data_dir=data))
    frame = service.reference.load(champion)
    assert "cultivar" not in frame.columns
    assert len(frame.columns) == 13


def test_models_lists_versions_as_json(tmp_path: Path, wine: dict[str, Path]) -> None:
    data = tmp_path / "artifacts"
    assert push(data, "wine", str(wine["model"]), "--reference", str(wine["train"]),
                "--label", "cultivar")[0] == 0
    for args in (["models", "--json"], ["models", "list", "--json"]):
        result = CliRunner().invoke(main, [*args, "--model", "wine", "--data-dir", str(data)])
        assert result.exit_code == 0, result.output
        listing = json.loads(result.output)
        versions = listing["versions"]
        assert listing["model"] == "wine"
        assert [(v["version"], v["status"]) for v in versions] == [(1, "champion")]
        assert versions[0]["params"]["features"][0] == "alcohol"


BAD = [
    pytest.param(["model", "train", "--label", "target"],
                 "--label target: not a column of", id="missing label column"),
    pytest.param(["model", "unscorable", "--label", "cultivar"],
                 "cannot score the first rows of", id="model cannot score the rows"),
    pytest.param(["model", "no-magnesium", "--label", "cultivar"],
                 "the model expects feature 'magnesium', which is not a column of",
                 id="expected feature missing"),
    pytest.param(["model", "train", "--label", "cultivar", "--ignore", "magnesium"],
                 "the model expects feature 'magnesium', which is skipped",
                 id="expected feature ignored"),
    pytest.param(["model.pkl", "train", "--label", "cultivar"],
                 "unknown model file type '.pkl'", id="unknown model file type"),
    pytest.param(["model", "model", "--label", "cultivar"],
                 "unsupported file type .skops", id="unknown reference file type"),
    pytest.param(["broken", "train", "--label", "cultivar"],
                 "not a readable skops file", id="not a model"),
    pytest.param(["model", "gaps", "--label", "cultivar"],
                 "--label cultivar: 3 row(s) of", id="rows without a label"),
    pytest.param(["mlflow-pickled", "train", "--label", "cultivar"],
                 "saved with cloudpickle, which driftloop never loads", id="pickled mlflow"),
]


@pytest.mark.parametrize("existing", [False, True], ids=["fresh folder", "existing registry"])
@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_is_one_line_naming_the_fix_and_changes_nothing(
        tmp_path: Path, wine: dict[str, Path], args: list[str], message: str,
        existing: bool) -> None:
    data = tmp_path / "artifacts"
    if existing:
        assert push(data, "wine", str(wine["model"]), "--reference", str(wine["train"]),
                    "--label", "cultivar")[0] == 0
        before_db = registry_state(data)
    before = tree_state(data)
    model, reference, *rest = args
    code, out = push(data, "wine", str(wine[model]), "--reference", str(wine[reference]), *rest)
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), out
    assert message in lines[0]
    assert tree_state(data) == before  # not even a database file in a fresh folder
    if existing:
        assert registry_state(data) == before_db


def test_a_failed_registry_write_removes_the_snapshot_it_wrote(
        tmp_path: Path, wine: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing half-written: the snapshot goes first, so a push_candidate that fails (a
    full disk, a lost database) must take it back."""
    data = tmp_path / "artifacts"
    assert push(data, "wine", str(wine["model"]), "--reference", str(wine["train"]),
                "--label", "cultivar")[0] == 0
    before, before_db = tree_state(data), registry_state(data)

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(ModelRegistry, "push_candidate", fail)
    request = PushRequest("wine", str(wine["model"]), wine["train"], "cultivar", data,
                          f"sqlite:///{data / 'driftloop.db'}")
    with pytest.raises(OSError, match="No space left"):
        push_model(request)
    assert tree_state(data) == before
    assert registry_state(data) == before_db


def test_the_reference_keeps_only_the_models_features(tmp_path: Path,
                                                      wine: dict[str, Path]) -> None:
    """A pipeline fitted on some columns: the others are left out, and said so."""
    frame = pd.read_parquet(wine["train"])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(frame[["alcohol", "proline"]], frame["cultivar"])
    sio.dump(model, tmp_path / "two.skops")
    data = tmp_path / "artifacts"
    code, out = push(data, "wine", str(tmp_path / "two.skops"), "--reference",
                     str(wine["train"]), "--label", "cultivar")
    assert code == 0, out
    assert "2 features" in out and "left out: malic_acid" in out
