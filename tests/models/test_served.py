"""SklearnServed answers what the estimator itself says, from one pipeline pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tests.served_model import FEATURES, cancer_frame, example_rows, pipeline

from driftloop.models.served import SklearnServed, monitored_output


def test_labels_and_scores_match_the_estimator() -> None:
    frame = cancer_frame()
    model = pipeline().fit(frame[FEATURES], frame["label"])  # type: ignore[attr-defined]
    rows = example_rows(300, seed=2)
    out = SklearnServed(model, FEATURES).predict_batch(rows)
    x = pd.DataFrame.from_records(rows, columns=FEATURES)
    assert [o["prediction"] for o in out] == model.predict(x).tolist()
    np.testing.assert_allclose([o["score"] for o in out], model.predict_proba(x)[:, 1])
    assert monitored_output(out[0]) == out[0]["score"]
