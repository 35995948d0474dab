"""ModelService following the registry, on both backends; on PostgreSQL a NOTIFY wakes it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pandas as pd
from tests.served_model import cancer_frame, example_rows, push, served_settings_in

from driftloop.data.snapshots import SnapshotStore
from driftloop.registry import ModelRegistry
from driftloop.serving.compose import build_service


def test_a_promotion_elsewhere_reaches_the_service(db_url: str, tmp_path: Path) -> None:
    settings = served_settings_in(tmp_path, db_url)

    async def main() -> None:
        service = build_service(settings)
        await service.start()
        try:
            other = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
            champion = other.get_champion("cancer")
            assert champion is not None
            v2 = push(other, cancer_frame(), champion.dataset_id or "",
                      champion.dataset_sha256 or "", c=0.1)
            await asyncio.sleep(0.6)  # let the follower settle on the pushed candidate
            started = time.monotonic()
            await asyncio.to_thread(other.promote_candidate, "cancer", v2)
            while service.router.champion is None or service.router.champion.version != v2:
                await asyncio.sleep(0.01)
                assert time.monotonic() - started < 2.0
            _, routed = await service.predict(example_rows(1)[0], None, None)
            assert routed.version == v2
            if db_url.startswith("postgresql"):
                assert service.follower.listener is not None
                assert service.follower.listener.notifications >= 2  # push and promote
            other.engine.dispose()
        finally:
            await service.stop()

    asyncio.run(main())


def test_a_new_champion_becomes_the_drift_reference(tmp_path: Path) -> None:
    """After a promotion the detector compares live traffic with the new champion's
    training data, and the alarms raised against the old reference are closed."""
    settings = served_settings_in(tmp_path)

    async def main() -> None:
        service = build_service(settings)
        await service.start()
        try:
            assert service.monitor.detector is not None and service.reference.frame is not None
            before = len(service.reference.frame)
            registry = service.registry
            big = cancer_frame()
            big = big[big["size"] == "large"]  # a different training set: large tumours only
            snapshot = SnapshotStore(tmp_path, engine=registry.engine).write(
                big, holdout_fraction=0.2)
            train = pd.read_parquet(snapshot.train_path)
            v2 = push(registry, train, snapshot.id, snapshot.sha256)
            service.alarms.open.append(object())  # type: ignore[arg-type]  # an open alarm
            await asyncio.to_thread(registry.promote_candidate, "cancer", v2)
            await service.refresh()
            assert service.router.champion is not None
            assert service.router.champion.version == v2
            assert len(service.reference.frame) == len(train) != before
            assert set(service.reference.frame["size"]) == {"large"}
            size = next(p for p in service.monitor.detector.profiles if p.name == "size")
            assert size.categories == ["large"] and size.n == len(train)
            assert service.alarms.open == []
        finally:
            await service.stop()

    asyncio.run(main())
