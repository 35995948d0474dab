"""Errors of the model registry, each saying what to do about it."""

from __future__ import annotations

from driftloop.errors import ConflictError, DriftloopError, IntegrityError, NotFoundError


class RegistryError(DriftloopError):
    """Base class of registry errors."""


class ModelNotFoundError(RegistryError, NotFoundError):
    """No such model name or version."""


class PromotionConflictError(RegistryError, ConflictError):
    """A promotion, rollback or status change lost a race or targets the wrong state."""


class ArtifactIntegrityError(RegistryError, IntegrityError):
    """An artifact's bytes do not match the sha256 the registry recorded; nothing was loaded."""
