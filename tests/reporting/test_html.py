"""The HTML report escapes what it shows and draws one chart per column."""

from __future__ import annotations

import numpy as np

from driftloop.drift import DriftDetector
from driftloop.reporting import render_html


def test_feature_names_and_labels_are_escaped() -> None:
    rng = np.random.default_rng(0)
    hostile = "<script>alert(1)</script>"
    det = DriftDetector.from_reference(
        {hostile: rng.normal(size=300), "c": rng.choice(["<b>", "ok"], 300)},
        window=300, panes=1, output=rng.random(300),
    )
    det.observe({hostile: rng.normal(size=300), "c": ["<b>"] * 300}, output=rng.random(300))
    page = render_html(det.report())
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>" not in page
    assert page.count("<svg") == 3  # two features and the output
