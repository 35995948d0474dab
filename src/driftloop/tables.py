"""Reading the tables a user points driftloop at: Parquet or CSV, by file extension.

The I/O half of the batch drift report: :func:`batch_report_files` reads two files and
hands the tables to :func:`driftloop.drift.batch_report`, which does no I/O.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from driftloop.drift.batch import batch_report
from driftloop.drift.report import DriftReport
from driftloop.errors import InputError

SUFFIXES = (".parquet", ".pq", ".csv")


class TableReadError(InputError):
    """A table could not be read; the message names the file and what to do."""


def read_table(path: str | Path, *, dictionary_strings: bool = False) -> pa.Table:
    """Read ``path`` as a pyarrow Table (``.parquet`` / ``.pq`` or ``.csv``).

    With ``dictionary_strings``, a Parquet file's string columns come back as Arrow
    dictionaries (each distinct label once, and an index per row), as Parquet usually
    stores them: what the drift report counts, read 3x cheaper than a string per row.
    """
    path = Path(path)
    if not path.is_file():
        raise TableReadError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            # One file, read as such: pq.read_table goes through pyarrow.dataset, whose
            # import pulls in pandas (0.35 s of CPU, a sixth of a 1e6-row drift report).
            with pq.ParquetFile(path) as parquet:
                if not dictionary_strings:
                    return parquet.read()
                strings = [f.name for f in parquet.schema_arrow
                           if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            with pq.ParquetFile(path, read_dictionary=strings) as parquet:
                return parquet.read()
        if suffix == ".csv":
            return pa_csv.read_csv(path)
    except (pa.ArrowException, OSError) as exc:
        raise TableReadError(f"{path}: not a readable {suffix[1:]} file ({exc})") from exc
    raise TableReadError(
        f"{path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(SUFFIXES)}"
    )


def batch_report_files(reference: str | Path, current: str | Path,
                       **options: Any) -> DriftReport:
    """:func:`~driftloop.drift.batch_report` of two Parquet or CSV files; ``options`` are
    that function's (``categorical``, ``ignore``, ``output_column``, ``policy``, ...)."""
    with _small_pages():
        return batch_report(read_table(reference, dictionary_strings=True),
                            read_table(current, dictionary_strings=True), **options)


@contextlib.contextmanager
def _small_pages() -> Iterator[None]:
    """numpy asks the kernel for 2 MB pages for every array over 4 MB. A batch report
    makes dozens of short-lived arrays of a few MB per column, and where the kernel
    compacts memory to find huge pages at the fault (``transparent_hugepage/defrag =
    madvise``, Debian's default) that cost more system time than the larger pages save:
    measured on 1e6 x 10 rows, 0.42-0.46 s of system CPU with ordinary pages against
    0.67-1.45 s with huge ones. numpy's own switch, set back afterwards; where it is
    missing, nothing changes."""
    multiarray = getattr(getattr(np, "_core", None), "multiarray", None)
    switch = getattr(multiarray, "_set_madvise_hugepage", None)
    if switch is None:
        yield
        return
    before = switch(False)
    try:
        yield
    finally:
        switch(before)
