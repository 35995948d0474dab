"""Trainers that misbehave on purpose, importable by the training subprocess."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from driftloop.data.snapshots import Snapshot
from driftloop.training.sklearn import SklearnTrainer

log = logging.getLogger("driftloop.training")


class CrashingTrainer:
    def train(self, snapshot: Snapshot, parent: Any | None, params: Mapping[str, Any]) -> Any:
        log.info("about to fail on %s", snapshot.id)
        raise RuntimeError("the GPU caught fire")


class SlowTrainer(SklearnTrainer):
    """The built-in trainer after a pause: long enough to be killed mid-training."""

    def __init__(self, seconds: float, **options: Any) -> None:
        super().__init__(**options)
        self.seconds = seconds

    def train(self, snapshot: Snapshot, parent: Any | None, params: Mapping[str, Any]) -> Any:
        log.info("sleeping %.1f s before training", self.seconds)
        time.sleep(self.seconds)
        return super().train(snapshot, parent, params)
