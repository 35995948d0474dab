"""A drift report as a rich table: one row per feature, drifted rows first."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from driftloop.drift import DriftReport, FeatureDrift


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    return f"{value:.2e}" if 0 < abs(value) < 10 ** -digits else f"{value:.{digits}f}"


def _rows(report: DriftReport) -> list[FeatureDrift]:
    columns = list(report.features.values())
    if report.output is not None:
        columns.append(report.output)
    return sorted(columns, key=lambda c: (not c.drifted, -(c.js_distance or 0.0)))


def render_terminal(report: DriftReport, console: Console | None = None) -> None:
    """Print ``report`` to ``console`` (stdout by default)."""
    console = console or Console()
    table = Table(title="Drift by feature", title_justify="left", header_style="bold",
                  pad_edge=False, box=None)
    table.add_column("feature", no_wrap=True, overflow="ellipsis", max_width=32)
    for header in ("kind", "statistic", "p-value", "PSI", "JS", "missing", "drift"):
        table.add_column(header, justify="right", no_wrap=True)
    for c in _rows(report):
        statistic = (f"KS {_fmt(c.ks_statistic)}" if c.kind == "numeric"
                     else f"χ² {_fmt(c.chi2_statistic, 1)}")
        table.add_row(
            c.name,
            "num" if c.kind == "numeric" else "cat",
            statistic,
            _fmt(c.pvalue),
            _fmt(c.psi),
            _fmt(c.js_distance),
            f"{c.missing_share:.1%}",
            Text("DRIFT", style="bold red") if c.drifted else Text("ok", style="green"),
        )
    drifted = len(report.drifted_features)
    verdict = (
        Text(f"Dataset drift: {drifted} of {len(report.features)} features drifted "
             f"({report.drift_share:.0%})", style="bold red")
        if report.drifted
        else Text(f"No dataset drift ({drifted} of {len(report.features)} features drifted)",
                  style="bold green")
    )
    console.print(Group(table, verdict, Text(f"{report.window_size} current rows compared.")))
