"""Turning the caller's tables and rows into one numpy array per feature.

The drift core accepts a pandas DataFrame, a pyarrow Table, a mapping of array-likes or a
single row (a mapping of scalars). It recognises them by duck typing, so it never imports
pandas or pyarrow itself and stays usable with neither installed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from driftloop.drift.errors import DriftInputError


class FeatureKind(StrEnum):
    """How a feature is compared; a str, so reports and stored state hold the plain name."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


NUMERIC, CATEGORICAL = FeatureKind.NUMERIC, FeatureKind.CATEGORICAL
Kind = FeatureKind
Table = Any  # pandas.DataFrame | pyarrow.Table | Mapping[str, array-like | scalar]

_ARROW_NUMERIC_PREFIXES = ("int", "uint", "float", "double", "halffloat", "decimal")


def _has(value: object, name: str) -> bool:
    """Whether ``value``'s type has the attribute ``name``: duck typing that asks the
    class, not the instance. A DataFrame or Series answers a missing attribute by
    looking for a column or label of that name (~9 us), and pyarrow by raising with a
    formatted message (~3 us): several checks per column per batch added up to a tenth
    of ``observe()``."""
    return hasattr(type(value), name)


def column_names(table: Table) -> list[str]:
    """The column names of a DataFrame, an Arrow table or a mapping, in order."""
    if _has(table, "column_names"):  # pyarrow.Table
        return [str(name) for name in table.column_names]
    if _has(table, "columns") and _has(table, "iloc"):  # pandas.DataFrame
        # tolist() first: iterating pandas 3's Arrow-backed column index costs ~2 us a name.
        return [name if type(name) is str else str(name) for name in table.columns.tolist()]
    if isinstance(table, Mapping):
        return [str(name) for name in table]
    raise DriftInputError(
        f"expected a pandas DataFrame, a pyarrow Table or a mapping of columns, "
        f"got {type(table).__name__}"
    )


def get_column(table: Table, name: str) -> Any:
    """The raw column ``name`` of ``table`` (a Series, an Arrow array, a list or a scalar)."""
    if _has(table, "column_names"):  # pyarrow.Table
        return table.column(name)
    return table[name]


def numeric_matrix(table: Table) -> npt.NDArray[np.float64] | None:
    """Every column of a pandas DataFrame as float64 rows (columns × rows, missing as NaN)
    in one conversion, or None when ``table`` is something else or a column is not
    numbers. Pulling the columns one by one costs ~18 µs each in pandas (a Series
    built per column), ten times the conversion of the whole frame."""
    if not _has(table, "iloc") or not _has(table, "to_numpy"):
        return None
    try:
        matrix = table.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        return None  # the column-by-column path names the column and the value
    return np.ascontiguousarray(matrix.T)


def is_row(table: Table) -> bool:
    """True when ``table`` is a single row: a mapping whose values are all scalars."""
    if not isinstance(table, Mapping) or _has(table, "iloc"):
        return False
    return all(type(v) in _SCALARS or (not _is_column(v) and np.ndim(v) == 0)
               for v in table.values())


def _is_column(value: object) -> bool:
    """A pandas Series or an Arrow array: a column, known without converting it (np.ndim
    would copy it to numpy first, and pyarrow would import pandas to do so)."""
    return _has(value, "iloc") or _has(value, "to_pylist")


_SCALARS = frozenset({int, float, str, bool, type(None)})


def infer_kind(column: Any) -> Kind:
    """Numeric for integer and float columns; categorical for bool, string and category.

    Object columns are numeric only when every present value is a real number
    (``bool`` excluded), so a list like ``[1, 2.5, None]`` is numeric.
    """
    dtype = getattr(column, "dtype", None)
    if dtype is not None and _has(column, "iloc"):  # pandas Series
        if _has(dtype, "categories"):
            return CATEGORICAL
        kind = getattr(dtype, "kind", "O")
        return NUMERIC if kind in "iuf" else CATEGORICAL
    arrow_type = getattr(column, "type", None)
    if arrow_type is not None and _has(column, "to_pylist"):  # pyarrow array
        name = str(arrow_type)
        return NUMERIC if name.startswith(_ARROW_NUMERIC_PREFIXES) else CATEGORICAL
    array = np.asarray(column)
    if array.dtype.kind in "iuf":
        return NUMERIC
    if array.dtype.kind == "O":
        pandas = optional_pandas()
        if pandas is not None:
            inferred = pandas.api.types.infer_dtype(array.ravel(), skipna=True)
            return NUMERIC if inferred in _NUMERIC_OBJECTS else CATEGORICAL
        present = [v for v in array.ravel().tolist() if not is_missing(v)]
        if present and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in present
        ):
            return NUMERIC
    return CATEGORICAL


_NUMERIC_OBJECTS = frozenset({"integer", "floating", "mixed-integer-float"})


def is_missing(value: object) -> bool:
    """None, NaN, ±inf, pandas NA and NaT count as missing."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return not math.isfinite(value)
    return type(value).__name__ in ("NAType", "NaTType")


def numeric_values(column: Any, feature: str) -> npt.NDArray[np.float64]:
    """``column`` as float64, missing values as NaN; a clear error for non-numbers.

    Every path is vectorised: pandas and Arrow convert in C (nulls become NaN), and an
    object array is checked by pandas' type inference rather than value by value.
    """
    try:
        if _has(column, "iloc"):  # pandas Series, including nullable dtypes
            if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biu":
                # Nothing can be missing: a NaN fill would cost pandas a mask built and
                # applied, 13x the cast itself (75 against 6 us on 1,000 values).
                return np.asarray(column.to_numpy(dtype="float64"))
            return np.asarray(column.to_numpy(dtype="float64", na_value=np.nan))
        if _has(column, "to_pylist"):  # pyarrow Array or ChunkedArray
            if not str(column.type).startswith((*_ARROW_NUMERIC_PREFIXES, "bool")):
                raise TypeError(column.type)
            return arrow_values(column.cast("float64"), np.nan)
        array = np.asarray(column)
        if array.dtype.kind == "O":
            array = _object_numbers(array.ravel())
        if array.dtype.kind not in "biuf":
            raise TypeError(array.dtype)
        return np.asarray(array, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise not_a_number(feature, _first_non_number(column)) from exc


_NUMBER_KINDS = frozenset({"integer", "floating", "mixed-integer-float", "boolean", "empty"})


def _object_numbers(array: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """An object array of numbers and missing markers (None, NaN, pandas NA) as float64."""
    pandas = optional_pandas()
    if pandas is None:
        return np.array([np.nan if is_missing(v) else v for v in array.tolist()],
                        dtype=np.float64)
    if pandas.api.types.infer_dtype(array, skipna=True) not in _NUMBER_KINDS:
        raise TypeError("not numbers")
    missing = pandas.isna(array)
    out = np.full(array.size, np.nan)
    out[~missing] = array[~missing].astype(np.float64)
    return out


def optional_pandas() -> Any:
    """The pandas module when it is installed, else None (the core runs without it)."""
    try:
        import pandas  # noqa: PLC0415 - optional, imported on first use only
    except ImportError:  # pragma: no cover - pandas is a driftloop dependency
        return None
    return pandas


def not_a_number(feature: str, sample: object) -> DriftInputError:
    """The error for a non-number in a numeric feature."""
    return DriftInputError(
        f"expected numbers, got {sample!r}; declare the feature categorical "
        "if its values are labels",
        feature=feature,
    )


@dataclass(frozen=True)
class Factorized:
    """A categorical column as integer codes into its distinct labels, -1 for a null.

    Mapping the few distinct labels to a profile's slots and then indexing by the codes
    replaces a dictionary look-up per value. ``key`` (hashable, or None) identifies the
    label set when it can be reused from batch to batch: a pandas ``CategoricalDtype``.
    """

    codes: npt.NDArray[np.intp]
    labels: Callable[[], list[Any]]
    key: Hashable | None = None


def factorized(column: Any) -> Factorized | None:
    """The codes a pandas category or Arrow dictionary already carries, or that pandas /
    Arrow compute in C (``pandas.factorize``, ``dictionary_encode``); None only when
    pandas is not installed and the column is a plain list or array."""
    dtype = getattr(column, "dtype", None)
    series = _has(column, "iloc")
    if series and dtype is not None and _has(dtype, "categories"):
        categories = dtype.categories  # a pandas category: codes and categories ready
        return Factorized(np.asarray(column.array.codes, dtype=np.intp),
                          categories.tolist, dtype)
    if _has(column, "to_pylist"):  # pyarrow Array or ChunkedArray
        return _arrow_factorized(column)
    pandas = optional_pandas()
    if pandas is None:
        return None
    if not series:
        column = categorical_values(column)
    codes, uniques = pandas.factorize(column, use_na_sentinel=True)
    return Factorized(np.asarray(codes, dtype=np.intp), uniques.tolist)


def _arrow_factorized(column: Any) -> Factorized:
    codes: list[npt.NDArray[np.intp]] = []
    labels: list[Any] = []
    for chunk in getattr(column, "chunks", [column]):
        encoded = (chunk if str(chunk.type).startswith("dictionary")
                   else chunk.dictionary_encode())
        indices = arrow_values(encoded.indices, -1).astype(np.intp)
        codes.append(np.where(indices >= 0, indices + len(labels), -1))
        labels.extend(encoded.dictionary.to_pylist())
    joined = np.concatenate(codes) if codes else np.zeros(0, dtype=np.intp)
    return Factorized(joined, lambda: labels)


def arrow_values(column: Any, fill: float) -> npt.NDArray[Any]:
    """An Arrow array or chunked array of a fixed-width number type as one numpy array,
    nulls replaced by ``fill``, read from the data buffers: pyarrow's ``to_numpy`` imports
    pandas on first use (0.35 s of CPU, a sixth of a 1e6-row drift report of Parquet
    files, which need nothing else from pandas)."""
    parts = []
    for chunk in getattr(column, "chunks", [column]):
        if not len(chunk):
            continue
        filled = chunk.fill_null(fill) if chunk.null_count else chunk
        dtype = np.dtype(str(filled.type))
        parts.append(np.frombuffer(filled.buffers()[1], dtype=dtype, count=len(filled),
                                   offset=filled.offset * dtype.itemsize))
    if not parts:
        return np.zeros(0, dtype=np.dtype(str(column.type)))
    return np.concatenate(parts)


def categorical_values(column: Any) -> npt.NDArray[Any]:
    """``column`` as a 1-d numpy array of labels (object or string dtype)."""
    if _has(column, "iloc"):
        return np.asarray(column.to_numpy(dtype=object))
    if _has(column, "to_pylist"):
        return np.array(column.to_pylist(), dtype=object)
    array = np.asarray(column)
    return array.ravel() if array.ndim else array.reshape(1)


def _first_non_number(column: Any) -> object:
    values = column.to_pylist() if _has(column, "to_pylist") else list(np.ravel(column))
    for value in values:
        try:
            float(value)
        except (TypeError, ValueError):
            return value
    return values[0] if values else None
