"""scikit-learn models, stored with skops (no pickle).

skops refuses to build any type it does not know is safe unless told to trust it. We
trust exactly the types that come from scikit-learn, numpy and scipy themselves; an
artifact that needs anything else (a custom transformer, a lambda) is refused with the
list of offending types instead of being executed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.base import BaseEstimator

from driftloop.models.base import UntrustedArtifactError

TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.")
FILENAME = "model.skops"


class SklearnAdapter:
    """Any scikit-learn estimator or pipeline."""

    framework = "sklearn"
    suffixes = (".skops",)

    def handles(self, model: Any) -> bool:
        return isinstance(model, BaseEstimator)

    def save(self, model: Any, directory: Path) -> None:
        sio.dump(model, directory / FILENAME)

    def load(self, directory: Path) -> Any:
        return read_skops(directory / FILENAME)

    def read_file(self, path: Path, labels: Sequence[Any], features: Sequence[str]) -> Any:
        model = read_skops(path)
        if not self.handles(model):
            raise ValueError(f"{path} holds a {type(model).__name__}, not a scikit-learn "
                             "estimator")
        return model


def read_skops(path: Path, trusted_modules: tuple[str, ...] = TRUSTED_MODULES) -> Any:
    """The object in the skops file ``path``, built only from types of ``trusted_modules``;
    anything else is refused with the list of offending types."""
    try:
        unknown = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises zipfile, JSON and its own errors alike
        raise UntrustedArtifactError(f"{path}: not a readable skops file ({exc})") from None
    refused = [t for t in unknown if not t.startswith(trusted_modules)]
    if refused:
        names = ", ".join(m.rstrip(".") for m in trusted_modules)
        raise UntrustedArtifactError(f"{path} needs types outside {names}: {refused}")
    return sio.load(path, trusted=unknown)
