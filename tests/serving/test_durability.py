"""An acknowledged prediction survives SIGKILL in the journal mode (the default); so do
acknowledged labels. The other modes are measured side by side in
``benchmarks/durability_bench.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.served_model import served_settings_in
from tests.serving.crash import crash_once


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_prediction_in_journal_mode(
        tmp_path: Path) -> None:
    result = crash_once(served_settings_in(tmp_path), "journal", clients=8, predictions=300)
    assert result.predictions >= 300 and result.labels > 10
    assert result.lost_predictions == 0, result
    assert result.lost_labels == 0, result
