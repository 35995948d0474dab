"""Evaluation of a candidate model against the champion: metrics, a time-uniform
confidence sequence and the ShadowGate's decision rule. Pure: no I/O, no clock, no
database; callers feed outputs and labels and act on the verdicts.

See :class:`ShadowGate` for a runnable example.
"""

from driftloop.evaluation.gate import (
    GateConfig,
    GateDecision,
    HoldoutResult,
    PairedScores,
    PairedSummary,
    ShadowGate,
)
from driftloop.evaluation.horizon import (
    LabelHorizon,
    LabelShare,
    label_share,
    labelled_share_by_prediction,
)
from driftloop.evaluation.paired_f1 import PairedF1
from driftloop.evaluation.rollback import RollbackWatch, WatchDecision
from driftloop.evaluation.scores import BUILTIN_METRICS, Metric, metric
from driftloop.evaluation.sequence import ConfidenceSequence

__all__ = [
    "BUILTIN_METRICS",
    "ConfidenceSequence",
    "GateConfig",
    "GateDecision",
    "HoldoutResult",
    "LabelHorizon",
    "LabelShare",
    "Metric",
    "PairedF1",
    "PairedScores",
    "PairedSummary",
    "RollbackWatch",
    "ShadowGate",
    "WatchDecision",
    "label_share",
    "labelled_share_by_prediction",
    "metric",
]
