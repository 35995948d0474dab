"""Reading the user's files: Parquet string columns as dictionaries for the drift report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftloop import tables
from driftloop.drift import batch_report
from driftloop.tables import batch_report_files, read_table


def _frame(seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue", None], 3_000, p=[0.5, 0.3, 0.15, 0.05])
    return pd.DataFrame({"x": rng.normal(shift, 1.0, 3_000), "colour": colour})


def test_string_columns_come_back_as_dictionaries_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(_frame(0, 0.0)), path, row_group_size=1_000)
    assert not pa.types.is_dictionary(read_table(path).schema.field("colour").type)
    as_dictionary = read_table(path, dictionary_strings=True)
    assert pa.types.is_dictionary(as_dictionary.schema.field("colour").type)
    assert as_dictionary.column("colour").num_chunks == 3  # a dictionary per row group
    assert as_dictionary.column("colour").to_pylist() == read_table(path).column(
        "colour").to_pylist()


def test_a_report_of_files_equals_the_report_of_their_frames(tmp_path: Path) -> None:
    reference, current = _frame(1, 0.0), _frame(2, 0.3)
    paths = [tmp_path / "reference.parquet", tmp_path / "current.parquet"]
    for frame, path in zip((reference, current), paths, strict=True):
        pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=700)
    from_files, from_frames = batch_report_files(*paths), batch_report(reference, current)
    assert from_files.features == from_frames.features
    assert from_files.features["colour"].current_histogram[-1] == 0  # no label unseen


def test_the_report_runs_on_ordinary_pages_and_restores_numpys_setting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    switch = np._core.multiarray._set_madvise_hugepage
    during: list[bool] = []

    def spy(*args: object, **kwargs: object) -> object:
        during.append(switch(False))  # reads the setting (and leaves it as it was)
        return real(*args, **kwargs)

    real = tables.batch_report
    monkeypatch.setattr(tables, "batch_report", spy)
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(_frame(0, 0.0)), path)
    before = switch(True)
    try:
        batch_report_files(path, path)
        assert during == [False] and switch(True) is True  # restored to huge pages
    finally:
        switch(before)
