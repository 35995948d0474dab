"""Retraining an XGBoost or LightGBM champion with its own framework's training API.

``xgboost.train`` / ``lightgbm.train`` run on the snapshot with the champion's parameters
and number of boosting rounds, from scratch (continuing the champion's trees would keep
what the drift made wrong). The champion's classes stay the label order, so the new model
answers in the same labels. The worker picks this trainer by itself for a booster champion
when no trainer is configured (:func:`driftloop.training.worker.choose_trainer`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from driftloop.models.boosters import FRAMEWORKS, BoosterModel
from driftloop.training.base import TrainerError
from driftloop.training.sklearn import feature_frame

if TYPE_CHECKING:
    from driftloop.data.snapshots import Snapshot

logger = logging.getLogger("driftloop.training")


class BoosterTrainer:
    """Refits a :class:`BoosterModel` champion natively; ``params`` override its parameters."""

    def train(self, snapshot: Snapshot, parent: Any | None,
              params: Mapping[str, Any]) -> BoosterModel:
        if not isinstance(parent, BoosterModel):
            raise TrainerError("BoosterTrainer retrains an XGBoost or LightGBM champion; the "
                               f"champion is {type(parent).__name__}")
        features, labels = feature_frame(snapshot)
        missing = [name for name in parent.features if name not in features.columns]
        if missing:
            raise TrainerError(f"snapshot {snapshot.id} lacks the feature {missing[0]!r}")
        if len(features) == 0:
            raise TrainerError(f"snapshot {snapshot.id} has no training rows")
        try:
            targets = parent.encode_labels(labels)
        except ValueError as exc:
            raise TrainerError(f"snapshot {snapshot.id}: {exc}") from None
        settings = {**parent.params, **params}
        shown = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
        train = "xgboost.train" if parent.framework == "xgboost" else "lightgbm.train"
        logger.info("training %s on %d rows x %d features with %s: the champion's parameters "
                    "(%s), %d rounds, from scratch", parent.framework, len(features),
                    len(parent.features), train, shown, parent.rounds)
        started = time.perf_counter()
        values = features[list(parent.features)]
        booster = FRAMEWORKS[parent.framework].train(settings, values, targets, parent.rounds)
        model = parent.retrained(booster, settings)
        if model.task != "regression":
            accuracy = float((model.predict_scores(values).argmax(axis=1) == targets).mean())
            logger.info("trained in %.2f s; training accuracy %.4f",
                        time.perf_counter() - started, accuracy)
        else:
            logger.info("trained in %.2f s", time.perf_counter() - started)
        return model
