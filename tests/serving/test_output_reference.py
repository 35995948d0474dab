"""The output reference is built from rows the champion was not fit on (issue 13).

A default random forest fits its training rows almost perfectly: its scores on them are
far more confident than on any new request, so an output reference built from them made
the output look drifted at every evaluation of perfectly stationary traffic, and with
``output_critical`` every one of those alarms started a retrain. Real rows: river's
bundled Bananas data set (5,300 rows, overlapping classes, so a forest overfits); the
traffic is rows outside the snapshot.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from driftloop.config import Settings
from driftloop.data.snapshots import SnapshotStore
from driftloop.drift import DriftDetector
from driftloop.models.served import monitored_output
from driftloop.registry import ModelRegistry
from driftloop.serving.compose import build_service

FEATURES = ["x1", "x2"]


def bananas() -> pd.DataFrame:
    from river.datasets import Bananas  # noqa: PLC0415 - heavy; only this test needs it

    frame = pd.DataFrame([{"x1": x["1"], "x2": x["2"], "label": int(y)} for x, y in Bananas()])
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    frame["event_timestamp"] = [start + timedelta(seconds=i) for i in range(len(frame))]
    frame["request_id"] = [f"row-{i}" for i in range(len(frame))]
    return frame


def test_output_reference_comes_from_held_out_rows(tmp_path: Path) -> None:
    rows = bananas()
    snapshot_rows, traffic = rows.iloc[:2000], rows.iloc[2000:]
    settings = Settings(model_name="rf", data_dir=tmp_path, drift_window=1000, drift_panes=2,
                        log_predictions=False, retrain_on_drift=False)
    registry = ModelRegistry.open(settings.database_url, artifacts=tmp_path)
    snapshot = SnapshotStore(tmp_path, engine=registry.engine).write(snapshot_rows,
                                                                     holdout_fraction=0.25)
    train = pd.read_parquet(snapshot.train_path)
    forest = RandomForestClassifier(random_state=0).fit(train[FEATURES], train["label"])
    version = registry.push_candidate("rf", forest, dataset=(snapshot.id, snapshot.sha256))
    registry.promote_candidate("rf", version.version)

    async def main() -> tuple[DriftDetector, list[float], list[float]]:
        service = build_service(settings, registry)
        await service.start()
        try:
            assert service.monitor.detector is not None and service.router.champion is not None
            model = service.router.champion.model
            records = traffic[FEATURES].to_dict(orient="records")
            live = [monitored_output(o) for o in model.predict_batch(records)]
            on_train = [monitored_output(o) for o in model.predict_batch(
                train[FEATURES].to_dict(orient="records"))]
            return service.monitor.detector, live, on_train
        finally:
            await service.stop()

    detector, live, on_train = asyncio.run(main())
    assert detector.output_source is not None and "holdout of snapshot" in detector.output_source
    features = traffic[FEATURES].reset_index(drop=True)
    drifted = []
    for start in range(0, len(features), 500):
        detector.observe(features.iloc[start:start + 500], output=live[start:start + 500])
        report = detector.last_report
        assert report is not None and report.output is not None
        assert report.output_source == detector.output_source
        drifted.append(report.output.drifted)
        assert (report.output.effect or 0.0) < 0.03
    assert not any(drifted)
    # The old construction, on the same traffic: outputs on the training rows as reference.
    old = DriftDetector.from_reference(train[FEATURES], output=np.asarray(on_train),
                                       window=1000, panes=2)
    old.observe(features, output=live)
    old_output = old.report().output
    assert old_output is not None and old_output.effect is not None
    assert old_output.effect > 0.1 and (old_output.pvalue or 1.0) < 1e-3  # JS 0.16
    registry.engine.dispose()
