"""Errors of the model registry, each saying what to do about it."""

from __future__ import annotations


class RegistryError(Exception):
    """Base class of registry errors."""


class ModelNotFoundError(RegistryError, LookupError):
    """No such model name or version."""


class PromotionConflictError(RegistryError):
    """A promotion, rollback or status change lost a race or targets the wrong state."""


class ArtifactIntegrityError(RegistryError):
    """An artifact's bytes do not match the sha256 the registry recorded; nothing was loaded."""
