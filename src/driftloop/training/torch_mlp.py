"""TorchTrainer: a multilayer perceptron trained with PyTorch, on a GPU when there is one.

The trainer fits the input encoding on the snapshot's train part (standardised numbers,
one-hot categories: :class:`~driftloop.models.mlp.Encoder`), trains a ReLU network with
Adam on the cross-entropy in shuffled minibatches, and returns an
:class:`~driftloop.models.mlp.MLPModel` — the weights copied to numpy — so serving runs
without torch, and the artifact is arrays plus JSON (``MLPAdapter``), never a pickle.

* **torch is optional** (``pip install 'driftloop[torch]'``) and imported only when a
  training starts: the rest of driftloop, serving included, never needs it.
* **Device:** ``device="auto"`` trains on CUDA when ``torch.cuda.is_available()``, else on
  the CPU; the log and the model's ``provenance`` say which (with the GPU's name). The
  whole training set is moved to the device once: snapshots are small enough.
* **Determinism:** the initial weights and the minibatch order come from ``seed`` through
  a generator local to the run, so the process's global random state is left alone. The
  same seed gives the same model on the CPU; CUDA kernels may differ in the last bits.
* **Warm start:** when the parent (the champion) is an ``MLPModel`` with the same layer
  shapes, feature order, column kinds, categories and classes, training continues from its
  weights — re-expressed for the freshly fitted standardisation
  (:meth:`~driftloop.models.mlp.MLPModel.reencoded`), so it starts from exactly the
  parent's predictions. Otherwise it starts from scratch; the log says why.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftloop.models.mlp import Encoder, MLPModel
from driftloop.training.base import TrainerError

if TYPE_CHECKING:
    import torch

    from driftloop.data.snapshots import Snapshot

logger = logging.getLogger("driftloop.training")

INSTALL_HINT = "pip install 'driftloop[torch]'"
LOG_LINES = 8  # about this many epoch lines per training, plus the first and the last


@dataclass(frozen=True)
class TorchOptions:
    """The trainer's settings; :class:`TrainerError` names a field with a bad value."""

    hidden: tuple[int, ...] = (64, 64)
    epochs: int = 40
    learning_rate: float = 1e-3
    batch_size: int = 256
    weight_decay: float = 0.0
    device: str = "auto"
    seed: int = 0
    warm_start: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.hidden, list):  # from JSON
            object.__setattr__(self, "hidden", tuple(self.hidden))
        if not isinstance(self.hidden, tuple) or not all(_integer(h, 1) for h in self.hidden):
            raise TrainerError(f"hidden: must be a list of layer widths >= 1, got {self.hidden!r}")
        for name in ("epochs", "batch_size"):
            if not _integer(getattr(self, name), 1):
                raise TrainerError(f"{name}: must be an integer >= 1, got {getattr(self, name)!r}")
        if not _integer(self.seed, 0):
            raise TrainerError(f"seed: must be an integer >= 0, got {self.seed!r}")
        if not (_number(self.learning_rate) and self.learning_rate > 0):
            raise TrainerError(f"learning_rate: must be a number > 0, got {self.learning_rate!r}")
        if not (_number(self.weight_decay) and self.weight_decay >= 0):
            raise TrainerError(f"weight_decay: must be a number >= 0, got {self.weight_decay!r}")
        if not isinstance(self.device, str) or not self.device:
            raise TrainerError(f"device: must be 'auto', 'cpu', 'cuda' or 'cuda:N', got "
                               f"{self.device!r}")
        if not isinstance(self.warm_start, bool):
            raise TrainerError(f"warm_start: must be true or false, got {self.warm_start!r}")

    def with_params(self, params: Mapping[str, Any]) -> TorchOptions:
        """These options with ``params`` (one run's overrides) applied."""
        unknown = sorted(set(params) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TrainerError(f"unknown TorchTrainer parameter(s) {unknown}; known: "
                               f"{[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **params)


@dataclass(frozen=True, eq=False)
class Fitted:
    """One training's result: the servable model, and the torch module it was copied from
    (still on its device), for checks that the numpy forward pass matches torch's."""

    model: MLPModel
    module: torch.nn.Module
    device: str
    losses: tuple[float, ...]  # the mean minibatch loss of each epoch


class TorchTrainer:
    """Trains an MLP with PyTorch (see the module docstring); returns an MLPModel."""

    def __init__(self, hidden: Sequence[int] = (64, 64), epochs: int = 40,
                 learning_rate: float = 1e-3, batch_size: int = 256, weight_decay: float = 0.0,
                 device: str = "auto", seed: int = 0, warm_start: bool = True) -> None:
        self.options = TorchOptions(tuple(hidden), epochs, learning_rate, batch_size,
                                    weight_decay, device, seed, warm_start)

    def train(self, snapshot: Snapshot, parent: Any | None, params: Mapping[str, Any]
              ) -> MLPModel:
        """The model trained on ``snapshot``'s train part; ``params`` override this trainer's
        options for this run only (an unknown key is a TrainerError)."""
        from driftloop.training.sklearn import feature_frame  # noqa: PLC0415 - loads sklearn

        features, labels = feature_frame(snapshot)
        return self.fit(features, labels, parent=parent, params=params,
                        source=f"snapshot {snapshot.id}").model

    def fit(self, features: pd.DataFrame, labels: pd.Series, *, parent: Any | None = None,
            params: Mapping[str, Any] | None = None, source: str = "the training data",
            ) -> Fitted:
        """Train on ``features`` and ``labels`` (what :meth:`train` reads from a snapshot);
        ``source`` names them in error messages."""
        try:
            import torch  # noqa: PLC0415 - optional, and slow to import
        except ImportError as exc:
            raise TrainerError(f"TorchTrainer needs PyTorch, which cannot be imported ({exc}): "
                               f"{INSTALL_HINT}") from None
        options = self.options.with_params(params or {})
        if len(features) == 0:
            raise TrainerError(f"{source} has no training rows: wait for more labelled "
                               "traffic before retraining")
        if labels.isna().any():
            raise TrainerError(f"{source} has {int(labels.isna().sum())} rows without a label")
        class_array, targets = np.unique(labels.to_numpy(), return_inverse=True)
        classes = tuple(class_array.tolist())
        if len(classes) < 2:
            raise TrainerError(f"{source} holds one class only ({classes[0]!r}): a classifier "
                               "needs at least two; wait for labels of another class")
        try:
            encoder = Encoder.fit(features)
        except ValueError as exc:
            raise TrainerError(f"{source}: {exc}") from None
        shapes = _layer_shapes(encoder.width, options.hidden, len(classes))
        start = _warm_start(parent, encoder, classes, shapes, enabled=options.warm_start)
        device, gpu = _device(options.device)
        logger.info("training a %s MLP on %d rows x %d features (%d classes) on %s",
                    _arrows(shapes), len(features), features.shape[1], len(classes),
                    f"{device} ({gpu})" if gpu else device)
        started = time.perf_counter()
        module = _module(shapes, options.seed, start).to(device)
        inputs = torch.from_numpy(encoder.transform(features)).to(device)
        losses = _optimise(module, inputs, torch.from_numpy(targets.astype(np.int64)).to(device),
                           options)
        logger.info("trained in %.2f s on %s", time.perf_counter() - started, device)
        weights, biases = _arrays(module)
        provenance = {"device": str(device), "gpu": gpu, "epochs": options.epochs,
                      "torch": torch.__version__, "rows": len(features), "seed": options.seed,
                      "warm_start": start is not None}
        return Fitted(MLPModel(encoder, weights, biases, classes, provenance), module,
                      str(device), losses)


def _device(wanted: str) -> tuple[torch.device, str | None]:
    """The device to train on, and the GPU's name when it is one."""
    import torch  # noqa: PLC0415

    if wanted == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(wanted)
        except RuntimeError as exc:
            raise TrainerError(f"device: {exc}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise TrainerError(f"device {wanted!r}: torch {torch.__version__} ({build}) sees no "
                               "CUDA device; use device='auto' or 'cpu'")
    return device, torch.cuda.get_device_name(device) if device.type == "cuda" else None


def _layer_shapes(inputs: int, hidden: Sequence[int], classes: int) -> list[tuple[int, int]]:
    widths = [inputs, *hidden, classes]
    return list(itertools.pairwise(widths))


def _arrows(shapes: Sequence[tuple[int, int]]) -> str:
    return "→".join(str(n) for n in [shapes[0][0], *(out for _, out in shapes)])


def _warm_start(parent: Any | None, encoder: Encoder, classes: tuple[Any, ...],
                shapes: list[tuple[int, int]], *, enabled: bool) -> MLPModel | None:
    """The parent re-expressed over ``encoder`` when its weights can seed this training;
    otherwise None, and the log says why."""
    if not enabled:
        reason = "warm_start is off"
    elif parent is None:
        reason = "there is no parent model"
    elif not isinstance(parent, MLPModel):
        reason = f"the parent is a {type(parent).__name__}, not an MLPModel"
    elif parent.classes != classes:
        reason = f"the parent's classes {list(parent.classes)} are not {list(classes)}"
    elif (difference := parent.encoder.difference(encoder)) is not None:
        reason = f"the inputs changed: {difference}"
    elif parent.layer_shapes != shapes:
        reason = f"the parent's layers {_arrows(parent.layer_shapes)} are not {_arrows(shapes)}"
    else:
        logger.info("warm start from the parent's weights (%s)", _arrows(shapes))
        return parent.reencoded(encoder)
    logger.info("training from scratch: %s", reason)
    return None


def _module(shapes: Sequence[tuple[int, int]], seed: int, start: MLPModel | None,
            ) -> torch.nn.Sequential:
    """Linear layers with ReLU between them: seeded initial weights, or ``start``'s."""
    import torch  # noqa: PLC0415

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[torch.nn.Module] = []
        for n_in, n_out in shapes:
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
        module = torch.nn.Sequential(*layers[:-1])  # no ReLU after the output layer
    if start is not None:
        with torch.no_grad():
            for linear, w, b in zip(_linears(module), start.weights, start.biases, strict=True):
                linear.weight.copy_(torch.from_numpy(w.T))
                linear.bias.copy_(torch.from_numpy(b))
    return module


def _linears(module: torch.nn.Module) -> list[torch.nn.Linear]:
    import torch  # noqa: PLC0415

    return [layer for layer in module.modules() if isinstance(layer, torch.nn.Linear)]


def _optimise(module: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
              options: TorchOptions) -> tuple[float, ...]:
    """Adam on the cross-entropy for ``options.epochs`` epochs; each epoch's mean loss."""
    import torch  # noqa: PLC0415

    optimiser = torch.optim.Adam(module.parameters(), lr=options.learning_rate,
                                 weight_decay=options.weight_decay)
    generator = torch.Generator().manual_seed(options.seed)
    rows = len(inputs)
    every = max(1, options.epochs // LOG_LINES)
    losses: list[float] = []
    for epoch in range(1, options.epochs + 1):
        order = torch.randperm(rows, generator=generator).to(inputs.device)
        total = torch.zeros((), device=inputs.device)
        for begin in range(0, rows, options.batch_size):
            batch = order[begin:begin + options.batch_size]
            loss = torch.nn.functional.cross_entropy(module(inputs[batch]), targets[batch])
            optimiser.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimiser.step()
            total += loss.detach() * len(batch)
        losses.append(total.item() / rows)  # one device sync per epoch
        if not math.isfinite(losses[-1]):
            raise TrainerError(f"training diverged at epoch {epoch} (loss {losses[-1]}): "
                               f"lower learning_rate (now {options.learning_rate:g})")
        if epoch == 1 or epoch % every == 0 or epoch == options.epochs:
            with torch.no_grad():
                accuracy = (module(inputs).argmax(dim=1) == targets).float().mean().item()
            logger.info("epoch %d/%d: loss %.4f, train accuracy %.4f", epoch, options.epochs,
                        losses[-1], accuracy)
    return tuple(losses)


def _arrays(module: torch.nn.Module) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """The module's weights as CPU float32 arrays, (inputs, outputs) per layer."""
    linears = _linears(module)
    # np.array copies: on the CPU, .numpy() shares memory with the module's parameters
    weights = tuple(np.array(layer.weight.detach().cpu().numpy().T, dtype=np.float32,
                             order="C") for layer in linears)
    biases = tuple(np.array(layer.bias.detach().cpu().numpy(), dtype=np.float32)
                   for layer in linears)
    return weights, biases


def _integer(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
