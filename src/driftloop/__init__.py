"""driftloop: continuous training for models served over HTTP.

The drift core is imported eagerly (it is light and usable alone); the registry, the loop
and the router load on first use, so ``import driftloop`` stays fast.

>>> from driftloop import DriftDetector, ModelRegistry, RetrainOrchestrator, ShadowGate
>>> from driftloop import AdaptiveAgentRouter
"""

from __future__ import annotations

import importlib
from typing import Any

from driftloop.drift import DriftDetector, DriftEvent, DriftPolicy, DriftReport

__version__ = "0.1.0"

_LAZY = {
    "ModelRegistry": "driftloop.registry",
    "RetrainOrchestrator": "driftloop.training.orchestrator",
    "ShadowGate": "driftloop.evaluation",
    "AdaptiveAgentRouter": "driftloop.serving.router",
}

__all__ = ["AdaptiveAgentRouter", "DriftDetector", "DriftEvent", "DriftPolicy", "DriftReport",
           "ModelRegistry", "RetrainOrchestrator", "ShadowGate"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'driftloop' has no attribute {name!r}")
