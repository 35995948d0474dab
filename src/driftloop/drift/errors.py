"""Exceptions raised by the drift core.

Every error that concerns one feature names it in ``feature`` and in the message, so a
caller can point a user at the exact column that needs fixing.
"""

from __future__ import annotations


class DriftInputError(ValueError):
    """Bad input to a detector: unknown or missing feature, wrong type, bad reference."""

    def __init__(self, message: str, *, feature: str | None = None) -> None:
        self.feature = feature
        prefix = f"feature {feature!r}: " if feature is not None else ""
        super().__init__(prefix + message)


class DriftFormatError(ValueError):
    """Bytes given to :meth:`DriftDetector.from_bytes` are not a valid detector state."""


class IncompatibleDetectorError(ValueError):
    """Two detectors cannot be merged: different references or window settings."""
