"""Every input form of a column encodes to the same slots as a value-by-value reading.

The categorical path maps a column's distinct labels once (pandas category codes, Arrow
dictionaries, ``pandas.factorize``) instead of looking every value up; these tests hold it
to the plain dictionary look-up on real labels with missing values of every kind.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from driftloop.drift import DriftDetector
from driftloop.drift.columns import arrow_values
from driftloop.drift.profile import MISSING, CategoricalProfile, NumericProfile

REFERENCE = ["red", "green", "blue", "green", None, "red", "red"]
STREAM = ["red", None, "violet", "blue", float("nan"), "green", pd.NA, "violet", "red"]


def one_by_one(profile: CategoricalProfile, values: list[object]) -> list[int]:
    return [profile.encode_one(v) for v in values]


@pytest.fixture
def profile() -> CategoricalProfile:
    return CategoricalProfile.build("colour", REFERENCE)


def test_reference_counts_and_missing(profile: CategoricalProfile) -> None:
    assert profile.categories == ["blue", "green", "red"]
    assert profile.counts.tolist() == [1, 2, 3] and profile.missing == 1


@pytest.mark.parametrize("form", [
    "list", "object array", "object series", "string series", "category series",
    "arrow strings", "arrow dictionary", "arrow chunked",
])
def test_every_form_encodes_like_the_lookup(profile: CategoricalProfile, form: str) -> None:
    clean = [None if (v is pd.NA or (isinstance(v, float) and math.isnan(v))) else v
             for v in STREAM]
    column = {
        "list": lambda: STREAM,
        "object array": lambda: np.array(STREAM, dtype=object),
        "object series": lambda: pd.Series(STREAM, dtype=object),
        "string series": lambda: pd.Series(clean, dtype="string"),
        "category series": lambda: pd.Series(pd.Categorical(clean)),
        "arrow strings": lambda: pa.array(clean),
        "arrow dictionary": lambda: pa.array(clean).dictionary_encode(),
        "arrow chunked": lambda: pa.chunked_array([pa.array(clean[:4]), pa.array(clean[4:])]),
    }[form]()
    expected = one_by_one(profile, STREAM)
    assert expected == [2, MISSING, 3, 0, MISSING, 1, MISSING, 3, 2]
    assert profile.encode(column).tolist() == expected


def test_category_maps_are_reused_and_follow_a_new_dtype(profile: CategoricalProfile) -> None:
    first = pd.Series(pd.Categorical(["red", "blue"], categories=["red", "blue"]))
    other = pd.Series(pd.Categorical(["red", "blue"], categories=["blue", "red", "pink"]))
    assert profile.encode(first).tolist() == [2, 0]
    assert profile.encode(other).tolist() == [2, 0]
    assert profile.encode(first.iloc[::-1]).tolist() == [0, 2]


def test_categorical_build_agrees_across_forms() -> None:
    frame = pd.DataFrame({"c": pd.Categorical(REFERENCE), "o": pd.Series(REFERENCE, dtype=object)})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    built = [CategoricalProfile.build("c", source) for source in
             (REFERENCE, frame["c"], frame["o"], table.column("c"), table.column("o"))]
    for p in built:
        assert (p.categories, p.counts.tolist(), p.missing) == (
            ["blue", "green", "red"], [1, 2, 3], 1)


def test_numeric_forms_encode_alike() -> None:
    reference = [1.0, 2.0, 2.0, 3.5, 7.0]
    profile = NumericProfile.build("x", reference, psi_bins=4)
    stream = [2.0, None, 0.5, 3.5, 9.0, float("inf"), 4]
    expected = [profile.encode_one(v) for v in stream]
    assert expected == [3, MISSING, 0, 5, 8, MISSING, 6]
    forms = [stream, np.array(stream, dtype=object), pd.Series(stream, dtype="Float64"),
             pa.array(stream, type=pa.float64()),
             pa.chunked_array([pa.array(stream[:3], pa.float64()),
                               pa.array(stream[3:], pa.float64())])]
    for column in forms:
        assert profile.encode(column).tolist() == expected


def test_strings_in_a_numeric_column_are_refused_by_name() -> None:
    det = DriftDetector.from_reference({"x": [1.0, 2.0, 3.0]})
    with pytest.raises(Exception, match="expected numbers") as info:
        det.observe({"x": np.array([1.0, "1.5", None], dtype=object)})
    assert getattr(info.value, "feature", None) == "x"


def test_arrow_values_read_every_chunk_offset_and_null() -> None:
    """Arrow numbers are read from their buffers (pyarrow's to_numpy imports pandas):
    sliced chunks, nulls and empty chunks must come out as to_pylist says."""
    base = pa.array([1.5, None, 3.0, 4.0, None, 6.0])
    column = pa.chunked_array([base.slice(1, 4), pa.array([], pa.float64()), base.slice(4)])
    expected = [np.nan if v is None else v for v in column.to_pylist()]
    assert np.array_equal(arrow_values(column, np.nan), expected, equal_nan=True)
    indices = pa.array([3, None, 0], pa.int8()).slice(1)
    assert arrow_values(indices, -1).tolist() == [-1, 0]
