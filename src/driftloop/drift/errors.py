"""Exceptions raised by the drift core, and the root of every driftloop exception.

Every error that concerns one feature names it in ``feature`` and in the message, so a
caller can point a user at the exact column that needs fixing.

Why the root lives here: ``driftloop.drift`` imports nothing from the rest of driftloop
(it is usable alone), yet its errors must be real :class:`DriftloopError` subclasses.
A virtual subclass (``DriftloopError.register``) is not enough, because an ``except``
clause only matches real base classes: ``except DriftloopError`` would let a registered
drift error through, and so would Starlette's handler lookup by ``__mro__``. So this
leaf module, which imports nothing, defines the root and :class:`InputError`, and
:mod:`driftloop.errors` re-exports both with the rest of the tree.
"""

from __future__ import annotations


class DriftloopError(Exception):
    """Root of every exception driftloop raises on purpose (the tree: :mod:`driftloop.errors`)."""


class InputError(DriftloopError, ValueError):
    """The caller's input is wrong: a value, a column, a body. The server answers 4xx.

    A ``ValueError`` too, so ``except ValueError`` written before this tree still holds.
    ``field`` names what to fix, when one thing is at fault.
    """

    field: str | None = None


class DriftInputError(InputError):
    """Bad input to a detector: unknown or missing feature, wrong type, bad reference."""

    def __init__(self, message: str, *, feature: str | None = None) -> None:
        self.feature = self.field = feature
        prefix = f"feature {feature!r}: " if feature is not None else ""
        super().__init__(prefix + message)


class DriftFormatError(InputError):
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


class IncompatibleDetectorError(InputError):
    """Two detectors cannot be merged: different references or window settings."""
