"""Training data: the prediction log with its feedback join, and immutable, hash-verified
dataset snapshots."""

from driftloop.data.predictions import (
    DuplicateRequestError,
    FeedbackBatchResult,
    FeedbackConflictError,
    FeedbackResult,
    PredictionInputError,
    PredictionLog,
    PredictionLogError,
    PredictionRecord,
    StoredPrediction,
    UnknownRequestError,
)
from driftloop.data.snapshots import (
    Snapshot,
    SnapshotInputError,
    SnapshotIntegrityError,
    SnapshotNotFoundError,
    SnapshotStore,
)
from driftloop.data.writer import BatchingWriter

__all__ = [
    "BatchingWriter",
    "DuplicateRequestError",
    "FeedbackBatchResult",
    "FeedbackConflictError",
    "FeedbackResult",
    "PredictionInputError",
    "PredictionLog",
    "PredictionLogError",
    "PredictionRecord",
    "Snapshot",
    "SnapshotInputError",
    "SnapshotIntegrityError",
    "SnapshotNotFoundError",
    "SnapshotStore",
    "StoredPrediction",
    "UnknownRequestError",
]
