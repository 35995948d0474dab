"""batch_report: one current frame against a reference, whatever the frame type."""

from __future__ import annotations

import pyarrow as pa
import pytest

from driftloop import batch_report as exported
from driftloop.drift import DriftInputError, batch_report
from driftloop.examples import breast_cancer_shift


def test_a_dataframe_report_finds_the_shift_and_matches_arrow_and_mappings() -> None:
    reference, current = breast_cancer_shift()
    report = batch_report(reference, current, ignore=["size"])
    assert exported is batch_report
    assert report.drifted and report.window_size == len(current)
    assert "size" not in report.features
    as_arrow = batch_report(pa.Table.from_pandas(reference), pa.Table.from_pandas(current),
                            ignore=["size"])
    as_mapping = batch_report({c: reference[c].to_numpy() for c in reference},
                              {c: current[c].to_numpy() for c in current}, ignore=["size"])
    for other in (as_arrow, as_mapping):
        assert {n: f.ks_statistic for n, f in other.features.items()} == {
            n: f.ks_statistic for n, f in report.features.items()}


def test_missing_columns_and_empty_data_name_the_problem() -> None:
    reference, current = breast_cancer_shift()
    with pytest.raises(DriftInputError, match="'mean radius': not a column of the current"):
        batch_report(reference, current.drop(columns="mean radius"))
    with pytest.raises(DriftInputError, match="'nope'"):
        batch_report(reference, current, ignore=["nope"])
    with pytest.raises(DriftInputError, match="no rows"):
        batch_report(reference, current.iloc[:0])
