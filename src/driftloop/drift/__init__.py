"""Streaming drift detection: pure numpy/scipy, no I/O, usable on its own.

The public names are re-exported here; see :class:`DriftDetector` for a runnable example.
They load on first use, so importing :mod:`driftloop.drift.errors` (which every driftloop
module does, through :mod:`driftloop.errors`) does not pull in numpy and scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from driftloop.drift.errors import (
    DriftFormatError,
    DriftInputError,
    DriftloopError,
    IncompatibleDetectorError,
    InputError,
)

if TYPE_CHECKING:
    from driftloop.drift.batch import batch_report
    from driftloop.drift.detector import DriftDetector
    from driftloop.drift.policy import DriftEvent, DriftPolicy
    from driftloop.drift.report import DriftReport, FeatureDrift

_LAZY = {
    "batch_report": "driftloop.drift.batch",
    "DriftDetector": "driftloop.drift.detector",
    "DriftEvent": "driftloop.drift.policy",
    "DriftPolicy": "driftloop.drift.policy",
    "DriftReport": "driftloop.drift.report",
    "FeatureDrift": "driftloop.drift.report",
}

__all__ = [
    "DriftDetector",
    "DriftEvent",
    "DriftFormatError",
    "DriftInputError",
    "DriftPolicy",
    "DriftReport",
    "DriftloopError",
    "FeatureDrift",
    "IncompatibleDetectorError",
    "InputError",
    "batch_report",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'driftloop.drift' has no attribute {name!r}")
