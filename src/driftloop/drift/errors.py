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


class DriftFormatVersionError(DriftFormatError):
    """The bytes are in a format version this code does not read. ``newer``: a newer
    driftloop wrote them (a rolling upgrade half done), which a reader should say loudly."""

    def __init__(self, found: int, readable: tuple[int, ...]) -> None:
        self.found, self.readable = found, readable
        known = ", ".join(map(str, readable))
        if self.newer:
            message = (f"detector state version {found} is newer than this driftloop reads "
                       f"(versions {known}): a newer driftloop wrote it; upgrade this one")
        else:
            message = f"detector state version {found} is not supported (reads {known})"
        super().__init__(message)

    @property
    def newer(self) -> bool:
        return self.found > max(self.readable)


class IncompatibleDetectorError(ValueError):
    """Two detectors cannot be merged: different references or window settings."""
