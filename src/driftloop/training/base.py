"""The Trainer contract: what the RetrainOrchestrator calls to turn a snapshot into a model.

A trainer is anything with ``train(snapshot, parent, params) -> model``: it reads the
snapshot's ``train.parquet`` (and may look at ``holdout.parquet``), may start from the
parent model (warm start, fine-tuning, the parent's few-shot examples), and returns a
fitted model that a registered :class:`~driftloop.models.base.ModelAdapter` can save.
Trainers log through the ``logging`` module: the orchestrator runs them in a subprocess
and streams each record as a ``log`` event of the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from driftloop.errors import ModelError

if TYPE_CHECKING:  # the data layer needs sqlalchemy; a trainer alone (a GPU box) may not
    from driftloop.data.snapshots import Snapshot


class TrainerError(ModelError):
    """Training failed for a reason that retrying will not fix (bad data, a failed job)."""


@runtime_checkable
class Trainer(Protocol):
    """Turns a dataset snapshot into a model version's model."""

    def train(self, snapshot: Snapshot, parent: Any | None, params: Mapping[str, Any]) -> Any:
        """The fitted model. ``parent`` is the current champion's model (or None)."""
