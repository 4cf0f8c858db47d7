"""The storage keeper: the image stores' cleaners, run on a period by one process of the service.

Every process records when a launch last used an image (a state-store record per image, so every
cleaner sees every process's launches); one process at a time holds a store's cleaning lease and
runs its pass. Each pass's use, budget and what it reclaimed are metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from bindery.engine_clients import docker_client
from bindery.metrics import Metrics
from bindery.settings import Settings
from bindery.datadir import StackPaths
from bindery.stack import base_image, builder_image
from bindery.state.base import StateStore
from bindery.storage.disk_use import Budget
from bindery.storage.image_cleaner import CleanPass, ImageCleaner

log = logging.getLogger(__name__)

USED = "image-used"  # state-store records: image -> {"at": last launch or container seen}
LEASE = "storage-lease"  # state-store records: store -> {"owner": the process cleaning it}
USED_TTL = 90 * 86400.0  # an image unused this long is least recent whatever its record said


def budgets(settings: Settings) -> dict[str, Budget]:
    """The engine stores' budgets (configured, or derived from the data folder's disk)."""
    stack = settings.stack
    return {store: Budget.of(store, configured, settings.data_dir, stack.store_high_ratio,
                             stack.store_low_ratio)
            for store, configured in (("run", stack.run_store_bytes),
                                      ("build", stack.build_store_bytes))}


def cleaned_stores(settings: Settings) -> list[str]:
    """The stores this service keeps: the embedded stack's engines (an external engine, or builds
    on Kubernetes, are their operators' to keep)."""
    out = []
    if not settings.service.api_only and not settings.stack.run_docker_host:
        out.append("run")
    if settings.builds.build_executor == "engine" and not settings.stack.build_docker_host:
        out.append("build")
    return out


class StorageKeeper:
    def __init__(self, settings: Settings, store: StateStore, metrics: Metrics, owner: str) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.owner = owner
        self.budgets = budgets(settings)
        self.stores = cleaned_stores(settings)
        self._task: asyncio.Task | None = None
        for name, budget in self.budgets.items():
            metrics.store_budget.labels(name).set(budget.bytes)
            metrics.store_high.labels(name).set(budget.high)

    async def used(self, image: str) -> None:
        """A launch uses ``image`` now (it will not be removed within the grace period)."""
        await self.store.put(USED, image, {"at": time.time()}, ttl=USED_TTL)

    async def used_at(self) -> dict[str, float]:
        out = {}
        for image in await self.store.keys(USED):
            record = await self.store.get(USED, image)
            if record is not None:
                out[image] = float(record.get("at", 0))
        return out

    def cleaner(self, name: str) -> ImageCleaner:
        settings = self.settings
        socket = settings.run_socket if name == "run" else settings.build_socket
        protected = {base_image.image_name(settings), builder_image.image_name(settings)}
        return ImageCleaner(
            name, docker_client(socket, 60), StackPaths.of(settings).store(name),
            self.budgets[name], f"{settings.registry.host}/{settings.registry.image_prefix}",
            protected, grace=settings.stack.store_clean_grace_seconds)

    async def clean(self, name: str) -> CleanPass | None:
        """One pass over store ``name`` if this process holds its lease (else None)."""
        if not await self._lease(name):
            return None
        cleaner = self.cleaner(name)
        try:
            for image in await asyncio.to_thread(_running_images, cleaner):
                await self.used(image)  # seen in use: most recently used now
            result = await asyncio.to_thread(cleaner.clean, await self.used_at())
        finally:
            cleaner.client.close()
        self.metrics.store_bytes.labels(name).set(result.after)
        self.metrics.store_reclaimed.labels(name).inc(result.reclaimed)
        self.metrics.store_removed.labels(name).inc(len(result.removed))
        self.metrics.store_clean_time.labels(name).inc(result.seconds)
        return result

    async def _lease(self, name: str) -> bool:
        owner = self.owner
        ttl = 3 * self.settings.stack.store_clean_interval_seconds

        def take(record):
            if record is None or record.get("owner") == owner:
                return {"owner": owner}, True
            return record, False

        return await self.store.update(LEASE, name, take, ttl)

    async def run(self) -> None:
        interval = self.settings.stack.store_clean_interval_seconds
        while True:
            for name in self.stores:
                try:
                    await self.clean(name)
                except Exception as exc:  # an engine or store hiccup: the next pass tries again
                    log.warning("cleaning the %s store failed: %s: %s", name,
                                type(exc).__name__, exc)
            await asyncio.sleep(interval)  # the cleaning period

    def start(self) -> None:
        if self.stores:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _running_images(cleaner: ImageCleaner) -> list[str]:
    return [c["Image"] for c in cleaner.client.api.containers() if c.get("Image")]
