"""The skops trust list: explicit classes, never a module prefix, never a function."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.f2py import crackfortran
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils import all_estimators

from driftloop.models import UntrustedArtifactError
from driftloop.models import sklearn as adapter_module
from driftloop.models.sklearn import SklearnAdapter, trust_types, trusted


class Doubler(TransformerMixin, BaseEstimator):
    """A user's own transformer: untrusted until listed in trusted_types."""

    def fit(self, x: object, y: object = None) -> Doubler:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x) * 2


@pytest.fixture(autouse=True)
def no_user_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter_module, "_user_types", set())


def _saved(model: object, folder: Path) -> Path:
    folder.mkdir()
    SklearnAdapter().save(model, folder)
    return folder


def _xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    return x, (x[:, 0] > 0).astype(int)


@pytest.mark.parametrize("model", [
    make_pipeline(StandardScaler(), LogisticRegression()),
    HistGradientBoostingClassifier(max_iter=5),
    RandomForestClassifier(n_estimators=3),
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=5),
], ids=lambda m: type(m).__name__)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fitted_scikit_learn_estimators_load(model: object, tmp_path: Path) -> None:
    x, y = _xy()
    model.fit(x, y)  # type: ignore[attr-defined]
    loaded = SklearnAdapter().load(_saved(model, tmp_path / "m"))
    assert (loaded.predict(x) == model.predict(x)).all()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("function", "name"), [
    (crackfortran.myeval, "numpy.f2py.crackfortran.myeval"),  # eval()s its argument
    (np.load, "numpy.load"),  # unpickles with allow_pickle
])
def test_functions_from_trusted_libraries_are_refused_by_name(
        function: object, name: str, tmp_path: Path) -> None:
    model = make_pipeline(FunctionTransformer(function), LogisticRegression())
    with pytest.raises(UntrustedArtifactError, match=name.replace(".", r"\.")):
        SklearnAdapter().load(_saved(model, tmp_path / "m"))


def test_a_users_own_class_loads_once_listed_and_a_function_cannot_be_listed(
        tmp_path: Path) -> None:
    x, y = _xy()
    model = make_pipeline(Doubler(), LogisticRegression()).fit(x, y)
    folder = _saved(model, tmp_path / "m")
    name = f"{Doubler.__module__}.Doubler"
    with pytest.raises(UntrustedArtifactError, match=name.replace(".", r"\.")):
        SklearnAdapter().load(folder)
    trust_types([name])
    assert (SklearnAdapter().load(folder).predict(x) == model.predict(x)).all()
    with pytest.raises(ValueError, match="is a function, not a class"):
        trust_types(["numpy.f2py.crackfortran.myeval"])
    with pytest.raises(ValueError, match="cannot import"):
        trust_types(["no.such.Thing"])


def test_every_scikit_learn_estimator_is_trusted_and_no_function_is() -> None:
    assert all(trusted(f"{cls.__module__}.{cls.__qualname__}") for _, cls in all_estimators())
    for name in ("sklearn.utils.all_estimators", "sklearn.utils._testing.assert_docstrings",
                 "numpy.load", "numpy.f2py.crackfortran.myeval", "scipy.io.loadmat",
                 "sklearn.base.clone", "builtins.eval"):
        assert not trusted(name), name
