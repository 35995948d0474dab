"""scikit-learn models, stored with skops (no pickle).

skops refuses to build any type it does not know is safe unless told to trust it. We
trust exactly the types that come from scikit-learn, numpy and scipy themselves; an
artifact that needs anything else (a custom transformer, a lambda) is refused with the
list of offending types instead of being executed.
"""

from __future__ import annotations

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

    def handles(self, model: Any) -> bool:
        return isinstance(model, BaseEstimator)

    def save(self, model: Any, directory: Path) -> None:
        sio.dump(model, directory / FILENAME)

    def load(self, directory: Path) -> Any:
        path = directory / FILENAME
        unknown = sio.get_untrusted_types(file=path)
        refused = [t for t in unknown if not t.startswith(TRUSTED_MODULES)]
        if refused:
            raise UntrustedArtifactError(
                f"{path} needs types outside scikit-learn, numpy and scipy: {refused}"
            )
        return sio.load(path, trusted=unknown)
