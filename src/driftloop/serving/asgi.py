"""The app as uvicorn imports it in each worker process: settings from the environment.

``driftloop serve`` writes its options to ``DRIFTLOOP_*`` variables, then starts uvicorn
with ``driftloop.serving.asgi:create`` as a factory, so every worker builds the same app.
"""

from __future__ import annotations

from fastapi import FastAPI

from driftloop.config import Settings
from driftloop.serving.app import create_app


def create() -> FastAPI:
    return create_app(Settings.load())
