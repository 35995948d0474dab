"""The one small contract every model format implements.

An adapter writes a model into an (empty, temporary) folder and reads it back. The
registry hashes and verifies the folder around it, so an adapter never has to think about
atomicity or integrity — and no adapter may use pickle.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Final, Protocol, overload, runtime_checkable

from driftloop.errors import InputError, IntegrityError


class UnsupportedModelError(InputError, TypeError):
    """No adapter knows how to store this kind of model."""


class UntrustedArtifactError(IntegrityError, ValueError):
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


@runtime_checkable
class ModelImporter(Protocol):
    """An adapter that also reads a user's own model file, for ``driftloop models push``."""

    #: The file suffixes it reads (lower case, with the dot), e.g. ``(".skops",)``.
    suffixes: tuple[str, ...]

    def read_file(self, path: Path, labels: Sequence[Any], features: Sequence[str]) -> Any:
        """The model in ``path``, as :meth:`ModelAdapter.load` would return it. ``labels``
        and ``features`` describe the reference data: a format that does not store its
        classes or feature names (a LightGBM text file, a model fitted on an array) takes
        them from there. ValueError or UntrustedArtifactError says what is wrong."""


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


#: The adapters driftloop ships, as its own ``driftloop.adapters`` entry points declare them
#: (pyproject.toml; a test keeps the two equal). Used only when the installed metadata lacks
#: them: a source tree on ``PYTHONPATH`` whose editable install predates the entry points.
BUILTIN_ADAPTERS: Final = {
    "sklearn": "driftloop.models.sklearn:SklearnAdapter",
    "gemini": "driftloop.models.gemini:GeminiAdapter",
    "mlp": "driftloop.models.mlp:MLPAdapter",
    "xgboost": "driftloop.models.boosters:XGBoostAdapter",
    "lightgbm": "driftloop.models.boosters:LightGBMAdapter",
}
ENTRY_POINT_GROUP: Final = "driftloop.adapters"


def installed_adapters(names: Sequence[str] = ()) -> Sequence[ModelAdapter]:
    """The model adapters of the ``driftloop.adapters`` entry-point group, in name order.

    Any installed package can add a model format by declaring an entry point in this group
    (``name = "package.module:AdapterClass"``); the registry, the server and the training
    worker all take their adapters from here. ``names`` (the ``adapters`` setting) keeps
    only those; an unknown name is an :class:`UnsupportedModelError` listing the known ones,
    at once. The adapters' modules are imported when one is first needed: a command that
    only reads the registry (``driftloop status``) loads no model library.
    """
    targets = dict(BUILTIN_ADAPTERS)
    targets.update({ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)})
    chosen = list(names) or sorted(targets)
    unknown = [name for name in chosen if name not in targets]
    if unknown:
        raise UnsupportedModelError(f"adapters: no adapter named {unknown[0]!r} in the "
                                    f"{ENTRY_POINT_GROUP} entry points (installed: "
                                    f"{', '.join(sorted(targets))})")
    return _Adapters([targets[name] for name in chosen])


class _Adapters(Sequence[ModelAdapter]):
    """Adapters named by ``module:Class`` targets, each imported and built on first use."""

    def __init__(self, targets: list[str]) -> None:
        self._targets = targets
        self._built: list[ModelAdapter] | None = None

    def _adapters(self) -> list[ModelAdapter]:
        if self._built is None:
            built = []
            for target in self._targets:
                module, _, attribute = target.partition(":")
                built.append(getattr(importlib.import_module(module), attribute)())
            self._built = built
        return self._built

    @overload
    def __getitem__(self, index: int) -> ModelAdapter: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ModelAdapter]: ...
    def __getitem__(self, index: int | slice) -> ModelAdapter | Sequence[ModelAdapter]:
        return self._adapters()[index]

    def __len__(self) -> int:
        return len(self._targets)


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
