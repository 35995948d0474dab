"""Model versions, aliases, lineage and the checksummed artifact store."""

from driftloop.registry.artifacts import ArtifactStore, StoredArtifact
from driftloop.registry.errors import (
    ArtifactIntegrityError,
    ModelNotFoundError,
    PromotionConflictError,
    RegistryError,
)
from driftloop.registry.registry import AuditEntry, ModelRegistry, ModelVersion

__all__ = [
    "ArtifactIntegrityError",
    "ArtifactStore",
    "AuditEntry",
    "ModelNotFoundError",
    "ModelRegistry",
    "ModelVersion",
    "PromotionConflictError",
    "RegistryError",
    "StoredArtifact",
]
