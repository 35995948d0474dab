"""Reading the tables a user points the CLI at: Parquet or CSV, by file extension."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

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
            return pq.read_table(path)
        if suffix == ".csv":
            return pa_csv.read_csv(path)
    except (pa.ArrowException, OSError) as exc:
        raise TableReadError(f"{path}: not a readable {suffix[1:]} file ({exc})") from exc
    raise TableReadError(
        f"{path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(SUFFIXES)}"
    )
