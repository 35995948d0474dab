"""Model adapters: how each kind of model is written to and read from an artifact folder."""

from driftloop.models.base import (
    ModelAdapter,
    UnsupportedModelError,
    UntrustedArtifactError,
    adapter_for,
    adapter_named,
    default_adapters,
)
from driftloop.models.sklearn import SklearnAdapter

__all__ = [
    "ModelAdapter",
    "SklearnAdapter",
    "UnsupportedModelError",
    "UntrustedArtifactError",
    "adapter_for",
    "adapter_named",
    "default_adapters",
]
