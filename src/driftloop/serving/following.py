"""Following the registry: the champion and candidate slots, and hot swaps.

A follower task waits for the registry's ``generation`` counter to move (a PostgreSQL
NOTIFY or the retraining loop wakes it at once, else it polls every ``poll_interval``
seconds) and then swaps slots or the traffic split to match. A new champion (with its
loaded model) is announced to ``on_champion`` (its training data becomes the drift
reference) and every new generation to ``on_change`` (the champion and traffic gauges).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from driftloop.models.served import ServedModel, served
from driftloop.registry import ModelRegistry, ModelVersion
from driftloop.serving.listener import RegistryListener
from driftloop.serving.reference import ReferenceData
from driftloop.serving.router import CANDIDATE, CHAMPION, Traffic, TrafficRouter

logger = logging.getLogger(__name__)

#: Loaded model versions kept in memory (champion, candidate and the last ones served).
MODEL_CACHE = 4
WARM_ROWS = 8


class RegistryFollower:
    """Keeps the router's slots and traffic split equal to what the registry says."""

    def __init__(self, registry: ModelRegistry, router: TrafficRouter,
                 reference: ReferenceData, *, poll_interval: float,
                 on_champion: Callable[[ModelVersion, ServedModel], Awaitable[None]],
                 on_change: Callable[[int], None]) -> None:
        self.registry, self.router, self.reference = registry, router, reference
        self.name = reference.name
        self.poll_interval = poll_interval
        self.on_champion, self.on_change = on_champion, on_change
        self.generation = -1
        self.listener: RegistryListener | None = None
        self._models: OrderedDict[int, ServedModel] = OrderedDict()
        self._refreshing = asyncio.Lock()
        self._wake: asyncio.Event | None = None

    async def load(self, champion: ModelVersion) -> None:
        """Start-up: install ``champion``, the candidate if any, and the traffic split."""
        self.generation = await asyncio.to_thread(self.registry.generation, self.name)
        await self._install(CHAMPION, champion)
        candidate = await asyncio.to_thread(self.registry.get_candidate, self.name)
        if candidate is not None:
            await self._install(CANDIDATE, candidate)
        await asyncio.to_thread(self._apply_traffic)
        loop = asyncio.get_running_loop()
        wake = self._wake = asyncio.Event()
        if self.registry.engine.dialect.name == "postgresql":  # listening before serving
            self.listener = RegistryListener(self.registry.engine, self.name,
                                             lambda: loop.call_soon_threadsafe(wake.set))
            self.listener.start()

    async def run(self) -> None:
        """Follow the registry until cancelled (a NOTIFY on PostgreSQL cuts the wait)."""
        wake = self._wake
        assert wake is not None, "load() first"
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.poll_interval)
                wake.clear()
                try:
                    await self.refresh()
                except Exception:  # a registry hiccup must not stop following it
                    logger.exception("following the registry failed; retrying")
        finally:
            if self.listener is not None:
                await asyncio.to_thread(self.listener.stop)

    def wake(self) -> None:
        """Converge on the registry now (the loop just changed it), not at the next poll.
        Called on the event loop."""
        if self._wake is not None:
            self._wake.set()

    async def refresh(self) -> bool:
        """Converge on the registry now: swap slots and traffic that changed. True if it did.

        Serialised: the follower and an admin request may both call it, and two
        interleaved refreshes could otherwise install an older champion last. The
        generation is recorded only once the slots match what was read with it."""
        async with self._refreshing:
            return await self._refresh()

    async def _refresh(self) -> bool:
        generation = await asyncio.to_thread(self.registry.generation, self.name)
        if generation == self.generation:
            return False
        champion, candidate = await asyncio.to_thread(
            lambda: (self.registry.get_champion(self.name), self.registry.get_candidate(self.name)))
        if champion is not None and (self.router.champion is None
                                     or self.router.champion.version != champion.version):
            await self.on_champion(champion, await self._install(CHAMPION, champion))
        if candidate is None:
            self.router.remove_candidate()
        elif self.router.candidate is None or self.router.candidate.version != candidate.version:
            await self._install(CANDIDATE, candidate)
        await asyncio.to_thread(self._apply_traffic)
        self.generation = generation
        self.on_change(generation)
        return True

    async def _install(self, slot: str, version: ModelVersion) -> ServedModel:
        """Load (sha256-verified), wrap and warm ``version``, then swap it into ``slot``."""
        model = await self._model(version.version)
        await self.router.install(slot, version.version, model, self.reference.rows(WARM_ROWS))
        logger.info("%s is now v%d of %s", slot, version.version, self.name)
        return model

    async def _model(self, version: int) -> ServedModel:
        """The served model of ``version``, from the few most recently used ones when it is
        there: promoting the loaded candidate, or rolling back, then swaps at once."""
        if version in self._models:
            self._models.move_to_end(version)
            return self._models[version]
        model = await asyncio.to_thread(self.registry.load, self.name, version)
        wrapped = served(model, [f.name for f in self.reference.features])
        self._models[version] = wrapped
        while len(self._models) > MODEL_CACHE:
            self._models.popitem(last=False)
        return wrapped

    def _apply_traffic(self) -> None:
        stored = self.registry.traffic(self.name)
        if stored:
            self.router.traffic = Traffic(**stored)
