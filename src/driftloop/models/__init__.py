"""Model adapters: how each kind of model is written to and read from an artifact folder.

:class:`SklearnAdapter` loads on first use (it needs skops), so a torch-free model such as
:mod:`driftloop.models.mlp` imports without the scikit-learn serialisation stack.
"""

from typing import Any

from driftloop.models.base import (
    ModelAdapter,
    UnsupportedModelError,
    UntrustedArtifactError,
    adapter_for,
    adapter_named,
    installed_adapters,
)

__all__ = [
    "ModelAdapter",
    "SklearnAdapter",
    "UnsupportedModelError",
    "UntrustedArtifactError",
    "adapter_for",
    "adapter_named",
    "installed_adapters",
]


def __getattr__(name: str) -> Any:
    if name == "SklearnAdapter":
        from driftloop.models.sklearn import SklearnAdapter  # noqa: PLC0415 - needs skops

        return SklearnAdapter
    raise AttributeError(f"module 'driftloop.models' has no attribute {name!r}")
