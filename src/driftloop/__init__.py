"""driftloop: continuous training for models served over HTTP.

Every public name loads on first use, so ``import driftloop`` (and the ``driftloop``
command, whose server workers re-import it) stays fast: the drift core pulls in scipy, the
registry SQLAlchemy, the loop scikit-learn.

>>> from driftloop import DriftDetector, ModelRegistry, RetrainOrchestrator, ShadowGate
>>> from driftloop import TrafficRouter, AdaptiveAgentRouter  # the same class
"""

from __future__ import annotations

import importlib
from typing import Any

#: The one place the version is written (pyproject.toml reads it from here).
__version__ = "0.1.0"

_LAZY = {
    "batch_report": "driftloop.drift",
    "batch_report_files": "driftloop.tables",
    "DriftDetector": "driftloop.drift",
    "DriftEvent": "driftloop.drift",
    "DriftPolicy": "driftloop.drift",
    "DriftReport": "driftloop.drift",
    "ModelRegistry": "driftloop.registry",
    "RetrainOrchestrator": "driftloop.training.orchestrator",
    "ShadowGate": "driftloop.evaluation",
    "AdaptiveAgentRouter": "driftloop.serving.router",
    "TrafficRouter": "driftloop.serving.router",
}

__all__ = ["AdaptiveAgentRouter", "DriftDetector", "DriftEvent", "DriftPolicy", "DriftReport",
           "ModelRegistry", "RetrainOrchestrator", "ShadowGate", "TrafficRouter", "batch_report",
           "batch_report_files"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'driftloop' has no attribute {name!r}")
