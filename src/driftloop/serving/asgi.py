"""The app as uvicorn imports it in each worker process.

``driftloop serve`` validates the settings once and hands every worker the resolved
settings as one JSON blob (:data:`driftloop.config.RESOLVED_ENV`); without it (a user's own
``uvicorn driftloop.serving.asgi:create --factory``) the settings load from the usual
sources. This module stays light to import: the app and everything it needs load inside
:func:`create`, after the worker has started answering its supervisor's health checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def create() -> FastAPI:
    from driftloop.config import Settings  # noqa: PLC0415
    from driftloop.serving.app import create_app  # noqa: PLC0415
    from driftloop.threads import limit_threads  # noqa: PLC0415

    settings = Settings.load()
    limit_threads(settings.resolved_threads)
    return create_app(settings)
