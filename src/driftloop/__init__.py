"""driftloop: continuous training for models served over HTTP."""

from driftloop.drift import DriftDetector, DriftEvent, DriftPolicy, DriftReport

__all__ = ["DriftDetector", "DriftEvent", "DriftPolicy", "DriftReport"]
__version__ = "0.1.0"
