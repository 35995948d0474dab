"""The demo's traffic: river's RandomRBF benchmark stream with an abrupt concept drift.

RandomRBF (river.datasets.synth) draws each example from one of ``n_centroids`` Gaussian
clusters, each with its own class; ConceptDriftStream switches, around ``shift_at`` (over
``width`` events), to a second RandomRBF with other centroids. The inputs move (so the
drift detector can see it) and the classes move with them (so the old model's accuracy
falls and a model retrained on fresh labels recovers it) — the situation the loop exists
for. The generator ships inside the river package: nothing is downloaded.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pandas as pd

FEATURES = 6
CLASSES = 3
CENTROIDS = 10


@dataclass(frozen=True)
class Stream:
    """``features`` (columns x0..x5) and ``labels`` (0..2), one row per event."""

    features: pd.DataFrame
    labels: pd.Series
    shift_at: int


def drifting_stream(events: int, shift_at: int, *, width: int = 200, seed: int = 7) -> Stream:
    """``events`` rows; the concept changes around row ``shift_at``."""
    from river.datasets import synth  # noqa: PLC0415 - river is heavy; only the demo needs it

    def rbf(model_seed: int, sample_seed: int) -> synth.RandomRBF:
        return synth.RandomRBF(seed_model=model_seed, seed_sample=sample_seed,
                               n_classes=CLASSES, n_features=FEATURES, n_centroids=CENTROIDS)

    stream = synth.ConceptDriftStream(stream=rbf(seed, seed + 1),
                                      drift_stream=rbf(seed + 4, seed + 2),
                                      position=shift_at, width=width, seed=seed)
    rows = list(itertools.islice(stream, events))
    features = pd.DataFrame([{f"x{k}": float(v) for k, v in x.items()} for x, _ in rows])
    labels = pd.Series([int(y) for _, y in rows], name="label")
    return Stream(features, labels, shift_at)
