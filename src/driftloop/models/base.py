"""The one small contract every model format implements.

An adapter writes a model into an (empty, temporary) folder and reads it back. The
registry hashes and verifies the folder around it, so an adapter never has to think about
atomicity or integrity — and no adapter may use pickle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class UnsupportedModelError(TypeError):
    """No adapter knows how to store this kind of model."""


class UntrustedArtifactError(ValueError):
    """An artifact holds types the adapter will not instantiate."""


@runtime_checkable
class ModelAdapter(Protocol):
    """Persists one family of models (scikit-learn, torch, a Gemini manifest, ...)."""

    #: Recorded with every version; selects the adapter again at load time.
    framework: str

    def handles(self, model: Any) -> bool:
        """Whether this adapter can save ``model``."""

    def save(self, model: Any, directory: Path) -> None:
        """Write ``model`` into the empty folder ``directory``."""

    def load(self, directory: Path) -> Any:
        """Read the model back from ``directory`` (already checksum-verified)."""


def write_manifest(path: Path, document: Mapping[str, Any]) -> None:
    """Write a model's JSON manifest (sorted keys, no NaN: the same bytes every time)."""
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"
    path.write_text(text, encoding="utf-8")


def read_manifest(path: Path, fmt: str) -> dict[str, Any]:
    """A manifest written by :func:`write_manifest` whose ``format`` is ``fmt``; anything
    else is an :class:`UntrustedArtifactError` naming the file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UntrustedArtifactError(f"{path}: not a readable JSON manifest: {exc}") from None
    found = document.get("format") if isinstance(document, dict) else None
    if found != fmt:
        raise UntrustedArtifactError(f"{path}: format {found!r} is not {fmt!r}")
    return document  # type: ignore[no-any-return]


def default_adapters() -> list[ModelAdapter]:
    from driftloop.models.gemini import GeminiAdapter  # noqa: PLC0415 - avoid an import cycle
    from driftloop.models.mlp import MLPAdapter  # noqa: PLC0415
    from driftloop.models.sklearn import SklearnAdapter  # noqa: PLC0415

    return [SklearnAdapter(), GeminiAdapter(), MLPAdapter()]


def adapter_for(model: Any, adapters: Sequence[ModelAdapter]) -> ModelAdapter:
    for adapter in adapters:
        if adapter.handles(model):
            return adapter
    known = ", ".join(a.framework for a in adapters)
    raise UnsupportedModelError(
        f"no adapter stores a {type(model).__module__}.{type(model).__qualname__} "
        f"(known frameworks: {known}); pass adapters=[...] to the registry"
    )


def adapter_named(framework: str, adapters: Sequence[ModelAdapter]) -> ModelAdapter:
    for adapter in adapters:
        if adapter.framework == framework:
            return adapter
    raise UnsupportedModelError(f"no adapter for framework {framework!r}")
