"""MLflow models, read without MLflow's loaders (and so without pickle).

An MLflow model directory is an ``MLmodel`` file (YAML) naming its flavours and the files
each one wrote. driftloop reads the ``python_function`` flavour's ``loader_module`` and
takes the model out of the framework flavour behind it, through driftloop's own adapters:

* ``mlflow.sklearn`` saved with ``serialization_format: skops`` (MLflow 3's default): the
  skops file, trusting scikit-learn, numpy and scipy types only;
* ``mlflow.xgboost``: the native model file (``.ubj``, ``.json``);
* ``mlflow.lightgbm``: a ``Booster``'s native text file, or a scikit-learn-API model
  saved with skops (lightgbm types trusted too), whose booster is taken out.

Anything else (``cloudpickle``/``pickle`` serialisation, a custom ``python_model``) is
refused with a message saying why, because loading it would run pickled code.

``models:/name/version`` and ``models:/name@alias`` are fetched from the MLflow registry
at ``MLFLOW_TRACKING_URI`` (MLflow's own variable; ``mlflow-skinny`` must be installed)
into a temporary folder, then read the same way. The version stores driftloop's own
artifact: serving never needs MLflow.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from driftloop.models.base import ModelAdapter, adapter_named
from driftloop.models.boosters import booster_model
from driftloop.models.sklearn import is_class_in, read_skops

MLMODEL: Final = "MLmodel"
URI_SCHEME: Final = "models:/"
def lightgbm_type(name: str) -> bool:
    """Types a LightGBM scikit-learn model saved by mlflow.lightgbm with skops is built
    from, beyond scikit-learn's: LightGBM's classes (never its functions) and OrderedDict."""
    return name == "collections.OrderedDict" or is_class_in(name, "lightgbm.")


def is_mlflow_source(source: str) -> bool:
    """Whether ``source`` names an MLflow model: a ``models:/`` URI or a folder holding an
    ``MLmodel`` file."""
    return source.startswith(URI_SCHEME) or (Path(source) / MLMODEL).is_file()


@contextmanager
def local_model_dir(source: str) -> Iterator[Path]:
    """The MLflow model folder of ``source``: the folder itself, or a ``models:/`` URI
    downloaded from the registry at ``MLFLOW_TRACKING_URI`` into a temporary folder."""
    if not source.startswith(URI_SCHEME):
        yield Path(source)
        return
    try:
        import mlflow.artifacts  # noqa: PLC0415 - optional and slow to import
    except ImportError:
        raise ValueError(f"{source}: reading the MLflow registry needs mlflow: pip install "
                         "'driftloop[models]' (or mlflow-skinny)") from None
    with tempfile.TemporaryDirectory(prefix="driftloop-mlflow-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp)
        except Exception as exc:  # MlflowException, connection and store errors alike
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{source}: not found in the MLflow registry ({first}); set "
                             "MLFLOW_TRACKING_URI to the tracking server") from None
        yield Path(path)


def read_mlflow_model(directory: Path, adapters: Sequence[ModelAdapter], *,
                      labels: Sequence[Any], features: Sequence[str]) -> tuple[Any, str]:
    """The model of the MLflow model folder ``directory`` and the flavour it came from;
    ValueError naming what cannot be read and why."""
    flavors = _flavors(directory)
    loader = str(flavors["python_function"].get("loader_module", ""))
    if loader == "mlflow.sklearn":
        flavor = _flavor(flavors, "sklearn", directory)
        _require_skops(flavor, "sklearn", directory)
        path = directory / str(flavor.get("pickled_model", "model.skops"))
        reader = adapter_named("sklearn", adapters)
        return reader.read_file(path, labels, features), "sklearn"  # type: ignore[attr-defined]
    if loader == "mlflow.xgboost":
        flavor = _flavor(flavors, "xgboost", directory)
        path = directory / str(flavor.get("data", "model.ubj"))
        reader = adapter_named("xgboost", adapters)
        return reader.read_file(path, labels, features), "xgboost"  # type: ignore[attr-defined]
    if loader == "mlflow.lightgbm":
        flavor = _flavor(flavors, "lightgbm", directory)
        path = directory / str(flavor.get("data", "model.lgb"))
        if flavor.get("model_class") == "lightgbm.basic.Booster":
            reader = adapter_named("lightgbm", adapters)
            return reader.read_file(path, labels, features), "lightgbm"  # type: ignore[attr-defined]
        _require_skops(flavor, "lightgbm", directory)
        estimator = read_skops(path, lightgbm_type)
        booster = getattr(estimator, "booster_", None)
        if booster is None:
            raise ValueError(f"{path}: holds a {type(estimator).__name__} without a trained "
                             "booster")
        return booster_model("lightgbm", booster, features=features, labels=labels), "lightgbm"
    raise ValueError(f"{directory}: MLflow loader {loader or '(none)'} is not readable "
                     "without pickle; driftloop reads the mlflow.sklearn (skops), "
                     "mlflow.xgboost and mlflow.lightgbm flavours")


def _flavors(directory: Path) -> Mapping[str, Any]:
    import yaml  # noqa: PLC0415 - only MLflow models need it

    path = directory / MLMODEL
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: not a readable MLmodel file ({exc})") from None
    flavors = document.get("flavors") if isinstance(document, dict) else None
    if not isinstance(flavors, dict) or not isinstance(flavors.get("python_function"), dict):
        raise ValueError(f"{path}: no python_function flavour")
    return flavors


def _flavor(flavors: Mapping[str, Any], name: str, directory: Path) -> Mapping[str, Any]:
    flavor = flavors.get(name)
    if not isinstance(flavor, dict):
        raise ValueError(f"{directory / MLMODEL}: the {name} flavour is missing")
    return flavor


def _require_skops(flavor: Mapping[str, Any], name: str, directory: Path) -> None:
    fmt = flavor.get("serialization_format")
    if fmt != "skops":
        raise ValueError(f"{directory}: this {name} model was saved with {fmt}, which driftloop "
                         f"never loads (it runs pickled code): save it with "
                         f"mlflow.{name}.save_model(..., serialization_format='skops')")
