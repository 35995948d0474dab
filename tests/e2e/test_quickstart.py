"""The quickstart page, run verbatim on a fresh folder: a scikit-learn pipeline on the
bundled digits (label column `digit`) is pushed, served by a real `driftloop serve`, sent
traffic and late labels over HTTP, the traffic shifts, and a retrain of the same pipeline
is promoted. Nothing in the page calls driftloop's Python API."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from tests.e2e.quickstart import quickstart_blocks, run_quickstart


def test_the_page_uses_no_driftloop_python() -> None:
    python = [b.code for b in quickstart_blocks() if b.lang == "python"]
    assert python and not any("driftloop" in code for code in python)


@pytest.mark.slow
def test_the_quickstart_promotes_a_retrained_pipeline_of_the_same_kind(tmp_path: Path) -> None:
    outcome = run_quickstart(tmp_path)
    assert '"model_version":2' in outcome.output  # the last answers came from v2
    assert outcome.champion.version == 2 and outcome.champion.parent_version == 1
    first, promoted = outcome.first, outcome.promoted
    assert isinstance(promoted, Pipeline) and promoted is not first
    assert [type(s) for _, s in promoted.steps] == [type(s) for _, s in first.steps]
    assert isinstance(promoted.steps[-1][1], LogisticRegression)
    assert promoted.steps[-1][1].max_iter == first.steps[-1][1].max_iter == 1000
    assert any("the champion's estimator, warm start" in line for line in outcome.run_log)
