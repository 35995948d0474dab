"""TorchTrainer and the numpy MLPModel: accuracy on a real benchmark stream, the numpy
forward pass against torch's, the pickle-free artifact through a real registry, warm
starts, the binary score, and a training in the real worker subprocess."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftloop.data.snapshots import EVENT_TIMESTAMP, Snapshot, SnapshotStore
from driftloop.demo.stream import drifting_stream
from driftloop.models.base import UntrustedArtifactError
from driftloop.models.mlp import Encoder, MLPAdapter, MLPModel
from driftloop.models.served import SklearnServed, served
from driftloop.registry import ModelRegistry
from driftloop.training.base import Trainer, TrainerError
from driftloop.training.sklearn import feature_frame
from driftloop.training.torch_mlp import Fitted, TorchTrainer
from driftloop.training.worker import TrainingJob, train_in_subprocess

torch = pytest.importorskip(
    "torch", reason="torch is optional (the `torch` extra): `make test-torch` runs these")

ROWS = 4000
NO_SHIFT = 20_000  # past the stream's end: one concept (river overflows far beyond ~30 000)


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("torch_mlp")
    return root, f"sqlite:///{root / 'driftloop.db'}"


@pytest.fixture(scope="module")
def snapshot(place: tuple[Path, str]) -> Snapshot:
    """The stream's rows as a recorded snapshot: 80 % train, the newest 20 % holdout."""
    root, url = place
    stream = drifting_stream(ROWS, NO_SHIFT)
    start = datetime.now(UTC) - timedelta(seconds=ROWS)
    frame = stream.features.assign(
        label=stream.labels.to_numpy(), request_id=[f"r{i}" for i in range(ROWS)],
        **{EVENT_TIMESTAMP: [start + timedelta(seconds=i) for i in range(ROWS)]})
    registry = ModelRegistry.open(url, artifacts=root)
    written = SnapshotStore(root, engine=registry.engine).write(frame)
    registry.engine.dispose()
    return written


@pytest.fixture(scope="module")
def fitted(snapshot: Snapshot) -> Fitted:
    return TorchTrainer().fit(*feature_frame(snapshot), source=snapshot.id)


@pytest.fixture(scope="module")
def holdout(snapshot: Snapshot) -> tuple[pd.DataFrame, pd.Series]:
    features, labels = feature_frame(snapshot, "holdout")
    return features, labels


def test_it_learns_the_stream_and_serves_as_is(
    fitted: Fitted, holdout: tuple[pd.DataFrame, pd.Series],
) -> None:
    features, labels = holdout
    model = fitted.model
    outputs = model.predict_batch(features.to_dict(orient="records"))
    accuracy = np.mean([o["prediction"] == y for o, y in zip(outputs, labels, strict=True)])
    assert accuracy > 0.8
    assert all(set(o) == {"prediction"} for o in outputs)  # multiclass: no score
    assert model.classes == (0, 1, 2) and model.layer_shapes == [(6, 64), (64, 64), (64, 3)]
    assert served(model, model.features) is model and isinstance(TorchTrainer(), Trainer)
    assert model.provenance["device"] == fitted.device and model.provenance["epochs"] == 40
    assert model.provenance["torch"] == torch.__version__
    assert len(fitted.losses) == 40 and fitted.losses[-1] < fitted.losses[0]


def test_the_numpy_forward_pass_equals_torch(
    fitted: Fitted, holdout: tuple[pd.DataFrame, pd.Series],
) -> None:
    features, _ = holdout
    inputs = torch.from_numpy(fitted.model.encoder.transform(features)).to(fitted.device)
    with torch.no_grad():
        expected = torch.softmax(fitted.module(inputs), dim=1).cpu().numpy()
    np.testing.assert_allclose(fitted.model.predict_proba(features), expected, atol=1e-5)


def test_the_artifact_round_trips_through_a_registry(
    place: tuple[Path, str], fitted: Fitted, holdout: tuple[pd.DataFrame, pd.Series],
) -> None:
    root, url = place
    registry = ModelRegistry.open(url, artifacts=root)
    version = registry.push_candidate("mlp", fitted.model)
    assert version.framework == "mlp"
    loaded = registry.load("mlp", version.version)  # sha256 verified first
    registry.engine.dispose()
    assert isinstance(loaded, MLPModel) and loaded.provenance == fitted.model.provenance
    rows = holdout[0].to_dict(orient="records")
    assert loaded.predict_batch(rows) == fitted.model.predict_batch(rows)


def _retag(directory: Path) -> None:
    path = directory / "model.json"
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "format": "driftloop.mlp/2"}))


def _reshape(directory: Path) -> None:
    with np.load(directory / "weights.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["w1"] = arrays["w1"][:, :32]
    np.savez(directory / "weights.npz", **arrays)


def _pickle(directory: Path) -> None:
    with np.load(directory / "weights.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["b0"] = np.array([object()] * len(arrays["b0"]), dtype=object)
    np.savez(directory / "weights.npz", **arrays)


@pytest.mark.parametrize(("tamper", "message"), [
    (_retag, "format 'driftloop.mlp/2' is not 'driftloop.mlp/1'"),
    (_reshape, r"layer 1: weights \(64, 32\) and bias \(64,\) do not match"),
    (_pickle, "allow_pickle=False"),
])
def test_a_tampered_artifact_is_refused(
    tmp_path: Path, fitted: Fitted, tamper: object, message: str,
) -> None:
    adapter = MLPAdapter()
    adapter.save(fitted.model, tmp_path)
    assert callable(tamper)
    tamper(tmp_path)
    with pytest.raises(UntrustedArtifactError, match=message):
        adapter.load(tmp_path)


def test_a_warm_start_continues_from_the_parents_weights(
    snapshot: Snapshot, fitted: Fitted, caplog: pytest.LogCaptureFixture,
) -> None:
    features, labels = feature_frame(snapshot)
    shifted = features.iloc[len(features) // 2:]  # other means and stds than the parent's
    rebased = fitted.model.reencoded(Encoder.fit(shifted))
    np.testing.assert_allclose(rebased.predict_proba(features),
                               fitted.model.predict_proba(features), atol=1e-5)

    caplog.set_level(logging.INFO, "driftloop.training")
    one_epoch = TorchTrainer(epochs=1)
    warm = one_epoch.fit(shifted, labels.iloc[len(features) // 2:], parent=fitted.model)
    assert "warm start from the parent's weights (6→64→64→3)" in caplog.text
    cold = one_epoch.fit(shifted, labels.iloc[len(features) // 2:], parent=None)
    assert warm.losses[0] < cold.losses[0]
    assert warm.model.provenance["warm_start"] and not cold.model.provenance["warm_start"]

    other = TorchTrainer(hidden=[8], epochs=1).fit(features, labels, parent=fitted.model)
    assert not other.model.provenance["warm_start"]
    assert "from scratch: the parent's layers 6→64→64→3 are not 6→8→3" in caplog.text


def test_a_binary_model_scores_the_second_class_like_sklearn() -> None:
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    features = pd.DataFrame({"a": x[:, 0], "b": x[:, 1],
                             "colour": rng.choice(["red", "blue"], size=400)})
    labels = pd.Series(np.where(x[:, 0] + x[:, 1] > 0, "yes", "no"))
    model = TorchTrainer(hidden=[16], epochs=30, learning_rate=1e-2).fit(features, labels).model
    rows: list[dict[str, Any]] = [  # then an unknown category, a missing value and column
        {"a": 2.0, "b": 1.0, "colour": "red"}, {"a": -2.0, "b": -1.0, "colour": "green"},
        {"a": None, "b": 3.0}]
    outputs = model.predict_batch(rows)
    proba = model.predict_proba(pd.DataFrame.from_records(rows, columns=model.features))
    assert model.classes == ("no", "yes")
    assert [o["prediction"] for o in outputs] == ["yes", "no", "yes"]
    assert [o["score"] for o in outputs] == proba[:, 1].tolist()

    sklearn_model = LogisticRegression().fit(features[["a", "b"]], labels)
    reference = SklearnServed(sklearn_model, ["a", "b"]).predict_batch([rows[0]])[0]
    assert {k: type(v) for k, v in outputs[0].items()} == {
        k: type(v) for k, v in reference.items()}


@pytest.mark.parametrize(("labels", "params", "message"), [
    ([], {}, "has no training rows"),
    ([1, 1, 1], {}, "holds one class only"),
    ([0, 1, 0], {"epoch": 3}, r"unknown TorchTrainer parameter\(s\) \['epoch'\]"),
    ([0, 1, 0], {"learning_rate": 0}, "learning_rate: must be a number > 0"),
    ([0, 1, 0], {"device": "nonsense"}, "device: .* use 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    pytest.param([0, 1, 0], {"device": "cuda"}, "sees no CUDA device; use device='auto'",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here")),
])
def test_bad_input_names_what_to_do(labels: list[int], params: dict[str, object],
                                    message: str) -> None:
    features = pd.DataFrame({"a": [0.5, 1.5, 2.5][:len(labels)]})
    with pytest.raises(TrainerError, match=message):
        TorchTrainer().fit(features, pd.Series(labels, dtype="int64"), params=params)


def test_without_torch_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(TrainerError, match=r"pip install 'driftloop\[torch\]'"):
        TorchTrainer().fit(pd.DataFrame({"a": [1.0, 2.0]}), pd.Series([0, 1]))


def test_it_trains_in_the_worker_subprocess(
    place: tuple[Path, str], snapshot: Snapshot, tmp_path: Path,
) -> None:
    root, url = place
    lines: list[str] = []

    async def on_log(line: str) -> None:
        lines.append(line)

    job = TrainingJob(trainer="driftloop.training.torch_mlp.TorchTrainer",
                      options={"hidden": [16], "epochs": 3}, params={"seed": 1},
                      data_dir=str(root), database_url=url, model_name="mlp",
                      snapshot_id=snapshot.id, out_dir=str(tmp_path / "out"))
    model = asyncio.run(train_in_subprocess(job, timeout_s=120, on_log=on_log))
    assert isinstance(model, MLPModel) and model.layer_shapes == [(6, 16), (16, 3)]
    assert model.provenance["seed"] == 1
    assert any("epoch 3/3" in line for line in lines), lines
