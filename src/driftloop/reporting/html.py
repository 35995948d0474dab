"""A drift report as one self-contained HTML page: inline CSS and SVG, no scripts, no fetches.

Each feature gets its statistics and a reference-vs-current histogram drawn as SVG bars
over the same bins the statistics used.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from jinja2 import Environment, select_autoescape

from driftloop.drift import DriftReport, FeatureDrift

CHART_WIDTH, CHART_HEIGHT = 520, 150


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    reference_height: float
    current_height: float
    label: str
    reference_share: float
    current_share: float


def _bars(feature: FeatureDrift) -> list[Bar]:
    ref_total = sum(feature.reference_histogram) or 1
    cur_total = sum(feature.current_histogram) or 1
    ref = [c / ref_total for c in feature.reference_histogram]
    cur = [c / cur_total for c in feature.current_histogram] or [0.0] * len(ref)
    top = max([*ref, *cur, 1e-9])
    slot = CHART_WIDTH / max(len(ref), 1)
    return [
        Bar(
            x=i * slot,
            width=slot,
            reference_height=r / top * (CHART_HEIGHT - 10),
            current_height=c / top * (CHART_HEIGHT - 10),
            label=label,
            reference_share=r,
            current_share=c,
        )
        for i, (label, r, c) in enumerate(zip(feature.bins, ref, cur, strict=True))
    ]


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2e}" if 0 < abs(value) < 1e-4 else f"{value:.4f}"


def render_html(report: DriftReport, *, title: str = "driftloop drift report") -> str:
    """The whole report as an HTML document string."""
    env = Environment(autoescape=select_autoescape(default=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["fmt"] = _fmt
    template = env.from_string(
        resources.files("driftloop.reporting").joinpath("report.html.j2").read_text("utf-8")
    )
    columns = list(report.features.values())
    if report.output is not None:
        columns.append(report.output)
    columns.sort(key=lambda c: (not c.drifted, -(c.js_distance or 0.0)))
    return template.render(
        title=title,
        report=report,
        columns=[(c, _bars(c)) for c in columns],
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
    )
