"""scikit-learn models, stored with skops (no pickle).

skops refuses to build any type it does not know is safe unless told to trust it. We
trust an explicit list of types, never a module prefix and never a function: skops' own
defaults (builtins, numpy dtypes and ufuncs, scikit-learn estimators and loss
internals), every estimator class scikit-learn lists (:func:`sklearn.utils.all_estimators`),
and the few array-holding helpers that fitted estimators contain (:data:`HELPER_TYPES`).
A prefix would be unsafe: ``numpy.`` and ``scipy.`` contain functions that evaluate or
execute a string, and ``numpy.load`` that unpickles. An artifact that needs anything
else is refused with the offending types named; a user who trusts more (a custom
transformer of their own) lists the classes in the ``trusted_types`` setting.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.base import BaseEstimator

from driftloop.models.base import UntrustedArtifactError

FILENAME = "model.skops"

#: Non-estimator classes that fitted scikit-learn estimators hold (trees, boosting
#: predictors, optimiser state, dtypes); each is plain data once loaded.
HELPER_TYPES = frozenset({
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
})

_user_types: set[str] = set()


@cache
def _estimator_types() -> frozenset[str]:
    from sklearn.utils import all_estimators  # noqa: PLC0415 - imports every estimator

    return frozenset(f"{cls.__module__}.{cls.__qualname__}" for _, cls in all_estimators())


def trusted_types() -> frozenset[str]:
    """The types (beyond skops' defaults) a model file may contain."""
    return _estimator_types() | HELPER_TYPES | frozenset(_user_types)


def trust_types(names: Iterable[str]) -> None:
    """Trust these classes too (the ``trusted_types`` setting); each must name a class."""
    for name in names:
        module, _, attribute = name.rpartition(".")
        try:
            found = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"trusted_types: cannot import {name!r}: {exc}") from exc
        if not isinstance(found, type):
            raise ValueError(f"trusted_types: {name!r} is a {type(found).__name__}, not a "
                             "class; only classes can be trusted")
        _user_types.add(name)


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
        refused = sorted(set(unknown) - trusted_types())
        if refused:
            raise UntrustedArtifactError(
                f"{path} contains types that are not trusted: {', '.join(refused)}. Only "
                "scikit-learn estimators and skops' default types load; if you wrote and "
                "trust these classes, list them in the trusted_types setting"
            )
        return sio.load(path, trusted=unknown)
