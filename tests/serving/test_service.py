"""ModelService following the registry, on both backends; on PostgreSQL a NOTIFY wakes it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.served_model import cancer_frame, example_rows, push, served_settings_in

from driftloop.registry import ModelRegistry
from driftloop.serving.service import ModelService


def test_a_promotion_elsewhere_reaches_the_service(db_url: str, tmp_path: Path) -> None:
    settings = served_settings_in(tmp_path, db_url)

    async def main() -> None:
        service = ModelService(settings)
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
                assert service.listener is not None
                assert service.listener.notifications >= 2  # push and promote
            other.engine.dispose()
        finally:
            await service.stop()

    asyncio.run(main())
