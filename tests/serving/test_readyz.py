"""/readyz: what a load balancer asks before sending traffic to a replica."""

from __future__ import annotations

import asyncio

import httpx
from fastapi.testclient import TestClient

from driftloop.config import Settings
from driftloop.serving.app import create_app
from driftloop.serving.compose import build_service


def test_not_ready_until_the_champion_is_loaded_verified_and_warmed(
        served_settings: Settings) -> None:
    async def scenario() -> None:
        service = build_service(served_settings)
        app = create_app(served_settings, service)
        # the ASGI transport runs no lifespan: the routes answer before the service started
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as client:
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["status"] == "not ready"
            assert (await client.get("/healthz")).status_code == 200  # alive all the same
            await service.start()
            try:
                response = await client.get("/readyz")
                assert response.status_code == 200
                assert response.json() == {"status": "ready", "champion": 1}
            finally:
                await service.stop()

    asyncio.run(scenario())


def test_ready_in_a_started_app(served_settings: Settings) -> None:
    with TestClient(create_app(served_settings)) as client:
        assert client.get("/readyz").json() == {"status": "ready", "champion": 1}
