"""Reading the tables a user points driftloop at: Parquet or CSV, by file extension.

The I/O half of the batch drift report: :func:`batch_report_files` reads two files and
hands the tables to :func:`driftloop.drift.batch_report`, which does no I/O.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from driftloop.drift.batch import batch_report
from driftloop.drift.report import DriftReport
from driftloop.errors import InputError

SUFFIXES = (".parquet", ".pq", ".csv")


class TableReadError(InputError):
    """A table could not be read; the message names the file and what to do."""


def read_table(path: str | Path) -> pa.Table:
    """Read ``path`` as a pyarrow Table (``.parquet`` / ``.pq`` or ``.csv``)."""
    path = Path(path)
    if not path.is_file():
        raise TableReadError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            # One file, read as such: pq.read_table goes through pyarrow.dataset, whose
            # import pulls in pandas (0.35 s of CPU, a sixth of a 1e6-row drift report).
            with pq.ParquetFile(path) as parquet:
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
    return batch_report(read_table(reference), read_table(current), **options)
