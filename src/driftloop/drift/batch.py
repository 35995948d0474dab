"""A batch drift report: one current table against a reference, in one call.

Frames only (a pandas DataFrame, a pyarrow Table or a mapping of arrays): the drift package
does no I/O. :func:`driftloop.tables.batch_report_files` reads Parquet or CSV files and
calls this; ``driftloop drift-report`` is that function on the command line.

>>> from driftloop.examples import breast_cancer_shift
>>> reference, current = breast_cancer_shift()
>>> report = batch_report(reference, current)
>>> report.drifted, report.window_size == len(current)
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

from driftloop.drift.columns import Table, column_names, get_column
from driftloop.drift.detector import DriftDetector
from driftloop.drift.errors import DriftInputError
from driftloop.drift.policy import DriftPolicy
from driftloop.drift.report import DriftReport


def batch_report(
    reference: Table,
    current: Table,
    *,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    output_column: str | None = None,
    ignore: Sequence[str] = (),
    psi_bins: int = 10,
    policy: DriftPolicy | None = None,
) -> DriftReport:
    """The drift report of ``current`` as one window against ``reference``.

    Every column of ``reference`` is a feature except those in ``ignore`` and the
    ``output_column`` (the model's output, monitored on its own), and ``current`` must have
    them all. Kinds are inferred unless named in ``categorical`` / ``numeric``. With the
    default ``policy`` a drifted feature counts at once: the window is the whole table,
    so there is no warm-up and no streak of evaluations to wait for.
    """
    ref_columns, cur_columns = column_names(reference), column_names(current)
    skip = {*ignore, *([output_column] if output_column else [])}
    for name in sorted(skip):
        if name not in ref_columns:
            raise DriftInputError("not a column of the reference", feature=name)
    features = [c for c in ref_columns if c not in skip]
    missing = [c for c in [*features, *skip - set(ignore)] if c not in cur_columns]
    if missing:
        raise DriftInputError("not a column of the current data", feature=missing[0])
    rows = len(get_column(current, cur_columns[0])) if cur_columns else 0
    if rows == 0:
        raise DriftInputError("the current data has no rows")
    detector = DriftDetector.from_reference(
        reference,
        features=features,
        output=get_column(reference, output_column) if output_column else None,
        categorical=categorical,
        numeric=numeric,
        psi_bins=psi_bins,
        window=rows,
        panes=1,
        policy=policy or DriftPolicy(min_fill=0.0, min_count=1, consecutive=1),
    )
    detector.observe_pane({name: get_column(current, name) for name in features},
                     output=get_column(current, output_column) if output_column else None)
    return detector.report()
