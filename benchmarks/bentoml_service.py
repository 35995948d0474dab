"""The BentoML peer of ``serve_bench.py``: the same model behind BentoML's adaptive batching.

Run by ``serve_bench.py`` with BentoML's own command (``bentoml serve
bentoml_service:Served``) from a separate virtual environment (``.venv-bentoml``: BentoML
pins its own web stack), never imported by driftloop. One worker, one batchable API: the
request is ``{"rows": [{"request_id": ..., "features": {...}}]}`` (a batchable API takes a
list, which BentoML's dispatcher merges with other requests' lists into one call of up to
``max_batch_size`` rows) and the answer a list of the same ``request_id``, ``model_version``,
``slot`` and ``output`` that driftloop answers. The rows are validated by pydantic models
equal to the other servers' ones; the model call is the same as driftloop's
(``predict_proba`` on a DataFrame of the batch, the likelier class and the positive score).

Configured by environment variables set by ``serve_bench.py``: the skops file of the
champion, the types it may load (the bench trusts its own model), its version, the
feature order, and the batching limits.
"""

from __future__ import annotations

import json
import os
from typing import Any

import bentoml
import numpy as np
import pandas as pd
import skops.io as sio

from bench_request import PredictRequest

MAX_BATCH = int(os.environ.get("SERVE_BENCH_MAX_BATCH", "64"))
MAX_LATENCY_MS = int(os.environ.get("SERVE_BENCH_MAX_LATENCY_MS", "1000"))


@bentoml.service(workers=1, traffic={"timeout": 60})
class Served:
    def __init__(self) -> None:
        self.model = sio.load(os.environ["SERVE_BENCH_MODEL_FILE"],
                              trusted=json.loads(os.environ["SERVE_BENCH_TRUSTED"]))
        self.columns = json.loads(os.environ["SERVE_BENCH_FEATURES"])
        self.version = int(os.environ["SERVE_BENCH_VERSION"])
        self.batches = 0
        self.rows = 0

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=MAX_LATENCY_MS)
    def predict(self, rows: list[PredictRequest]) -> list[dict[str, Any]]:
        frame = pd.DataFrame.from_records([r.features.model_dump(by_alias=True) for r in rows],
                                          columns=self.columns)
        proba = np.asarray(self.model.predict_proba(frame))
        labels = np.asarray(self.model.classes_)[proba.argmax(axis=1)].tolist()
        self.batches += 1
        self.rows += len(rows)
        return [{"request_id": r.request_id, "model_version": self.version, "slot": "champion",
                 "output": {"prediction": label, "score": score}}
                for r, label, score in zip(rows, labels, proba[:, 1].tolist(), strict=True)]

    @bentoml.api
    def stats(self) -> dict[str, int]:
        """Calls of the model and rows scored: the batches adaptive batching formed."""
        return {"batches": self.batches, "rows": self.rows}
