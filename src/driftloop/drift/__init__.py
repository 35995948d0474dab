"""Streaming drift detection: pure numpy/scipy, no I/O, usable on its own.

The public names are re-exported here; see :class:`DriftDetector` for a runnable example.
"""

from driftloop.drift.detector import DriftDetector
from driftloop.drift.errors import DriftFormatError, DriftInputError, IncompatibleDetectorError
from driftloop.drift.policy import DriftEvent, DriftPolicy
from driftloop.drift.report import DriftReport, FeatureDrift

__all__ = [
    "DriftDetector",
    "DriftEvent",
    "DriftFormatError",
    "DriftInputError",
    "DriftPolicy",
    "DriftReport",
    "FeatureDrift",
    "IncompatibleDetectorError",
]
