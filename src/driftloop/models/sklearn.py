"""scikit-learn models, stored with skops (no pickle).

skops refuses to build any type it does not know is safe unless told to trust it. We
trust an explicit list of types, never a module prefix and never a function: skops' own
defaults (builtins, numpy dtypes and ufuncs, scikit-learn estimators and loss
internals), scikit-learn's estimator classes (a class defined in a ``sklearn.`` module
that subclasses :class:`~sklearn.base.BaseEstimator`: the classes
:func:`sklearn.utils.all_estimators` lists, checked one name at a time rather than by
importing every estimator at start-up), and the few array-holding helpers that fitted
estimators contain (:data:`HELPER_TYPES`).
A prefix would be unsafe: ``numpy.`` and ``scipy.`` contain functions that evaluate or
execute a string, and ``numpy.load`` that unpickles. An artifact that needs anything
else is refused with the offending types named; a user who trusts more (a custom
transformer of their own) lists the classes in the ``trusted_types`` setting.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
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


def _import(name: str) -> object:
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


@cache
def is_estimator_class(name: str) -> bool:
    """Whether ``name`` is a scikit-learn estimator class (not a function, not another
    library's type)."""
    return is_class_in(name, "sklearn.", BaseEstimator)


def is_class_in(name: str, package: str, base: type = object) -> bool:
    """Whether ``name`` is a class (never a function) of ``package`` deriving from
    ``base``."""
    if not name.startswith(package):
        return False
    try:
        found = _import(name)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(found, type) and issubclass(found, base)


def trusted(name: str) -> bool:
    """Whether a model file may contain the type ``name`` (beyond skops' defaults)."""
    return name in HELPER_TYPES or name in _user_types or is_estimator_class(name)


def trust_types(names: Iterable[str]) -> None:
    """Trust these classes too (the ``trusted_types`` setting); each must name a class."""
    for name in names:
        try:
            found = _import(name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"trusted_types: cannot import {name!r}: {exc}") from exc
        if not isinstance(found, type):
            raise ValueError(f"trusted_types: {name!r} is a {type(found).__name__}, not a "
                             "class; only classes can be trusted")
        _user_types.add(name)


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


def read_skops(path: Path, also: Callable[[str], bool] = lambda name: False) -> Any:
    """The object in the skops file ``path``, built only from :func:`trusted` types and
    those ``also`` accepts; anything else is refused with the list of offending types."""
    try:
        unknown = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises zipfile, JSON and its own errors alike
        raise UntrustedArtifactError(f"{path}: not a readable skops file ({exc})") from None
    refused = sorted(name for name in set(unknown) if not (trusted(name) or also(name)))
    if refused:
        raise UntrustedArtifactError(
            f"{path} contains types that are not trusted: {', '.join(refused)}. Only "
            "scikit-learn estimators and skops' default types load; if you wrote and "
            "trust these classes, list them in the trusted_types setting")
    return sio.load(path, trusted=unknown)
