"""The demo's traffic: river's RandomRBF benchmark stream with an abrupt concept drift.

RandomRBF (river.datasets.synth) draws each example from one of ``n_centroids`` Gaussian
clusters, each with its own class; ConceptDriftStream switches, around ``shift_at`` (over
``width`` events), to a second RandomRBF with other centroids. The inputs move (so the
drift detector can see it) and the classes move with them (so the old model's accuracy
falls and a model retrained on fresh labels recovers it) — the situation the loop exists
for. The generator ships inside the river package: nothing is downloaded.

Rows are drawn on demand, so a replay can go on for as long as the loop needs (on a busy
machine the loop takes longer, and ``driftloop demo --until promoted`` waits for it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

FEATURES = 6
CLASSES = 3
CENTROIDS = 10


class DriftingStream:
    """Events x0..x5 with labels 0..2; the concept changes around event ``shift_at``."""

    def __init__(self, shift_at: int, *, width: int = 200, seed: int = 7) -> None:
        from river.datasets import synth  # noqa: PLC0415 - river is heavy; only the demo

        def rbf(model_seed: int, sample_seed: int) -> Any:
            return synth.RandomRBF(seed_model=model_seed, seed_sample=sample_seed,
                                   n_classes=CLASSES, n_features=FEATURES,
                                   n_centroids=CENTROIDS)

        self.shift_at = shift_at
        self._source: Iterator[tuple[dict[Any, float], Any]] = iter(
            synth.ConceptDriftStream(stream=rbf(seed, seed + 1),
                                     drift_stream=rbf(seed + 4, seed + 2),
                                     position=shift_at, width=width, seed=seed))
        self._rows: list[dict[str, float]] = []
        self._labels: list[int] = []

    def __len__(self) -> int:
        """Events drawn so far."""
        return len(self._labels)

    def rows(self, start: int, end: int) -> list[dict[str, float]]:
        """The feature rows of events [start, end), drawing more as needed."""
        self._draw(end)
        return self._rows[start:end]

    def label(self, event: int) -> int:
        self._draw(event + 1)
        return self._labels[event]

    def frame(self, start: int, end: int) -> pd.DataFrame:
        """Events [start, end) as a frame with a ``label`` column."""
        rows = self.rows(start, end)
        return pd.DataFrame(rows).assign(label=self._labels[start:end])

    def _draw(self, upto: int) -> None:
        while len(self._labels) < upto:
            x, y = next(self._source)
            self._rows.append({f"x{k}": float(v) for k, v in x.items()})
            self._labels.append(int(y))


@dataclass(frozen=True)
class Stream:
    """A fixed sample of the stream: ``features`` (columns x0..x5) and ``labels``."""

    features: pd.DataFrame
    labels: pd.Series
    shift_at: int

    def frame(self, start: int, end: int) -> pd.DataFrame:
        """Events [start, end) with a ``label`` column, as :meth:`DriftingStream.frame`."""
        return self.features.iloc[start:end].assign(label=self.labels.iloc[start:end])


def drifting_stream(events: int, shift_at: int, *, width: int = 200, seed: int = 7) -> Stream:
    """The first ``events`` events of :class:`DriftingStream`, as frames."""
    frame = DriftingStream(shift_at, width=width, seed=seed).frame(0, events)
    return Stream(frame.drop(columns="label"), frame["label"], shift_at)
