"""The storage keeper: the stores' cleaners, run on a period by one process of the service.

Every process records when a launch last used an image (a state-store record per image, so every
cleaner sees every process's launches); one process at a time holds a store's cleaning lease and
runs its pass. Each pass's use, budget and what it reclaimed are metrics.

The stores: the run and build engines' image stores (bindery/storage/image_cleaner.py) and the
embedded registry (bindery/storage/registry_cleaner.py: manifests deleted through its API, then
its blobs collected with the registry read-only; see bindery/state/registry_collection.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from bindery import datadir, http_clients, service_log
from bindery.backoff import WaitTimeout, wait_until_async
from bindery.engine_clients import docker_client
from bindery.registry_client import RegistryAuth, by_digest
from bindery.metrics import Metrics
from bindery.settings import Settings
from bindery.datadir import StackPaths
from bindery.launches.homes import Homes
from bindery.stack import base_image, builder_image, registry_server
from bindery.stack.jupyterhub import home_folder
from bindery.state import registry_collection
from bindery.state.base import StateStore
from bindery.storage.disk_use import Budget
from bindery.storage.home_cleaner import HomeCleaner, HomePass
from bindery.storage.image_cleaner import CleanPass, ImageCleaner
from bindery.storage.registry_cleaner import RegistryCleaner

log = logging.getLogger(__name__)

USED = "image-used"  # state-store records: image -> {"at": last launch or container seen}
LEASE = "storage-lease"  # state-store records: store -> {"owner": the process cleaning it}
USED_TTL = 90 * 86400.0  # an image unused this long is least recent whatever its record said
GC_PENDING = "registry-gc-pending"  # manifests deleted, blobs not collected yet (a build ran)
Names = Callable[[], Awaitable[Iterable[str]]]


def budgets(settings: Settings) -> dict[str, Budget]:
    """The stores' budgets (configured, or derived from the data folder's disk)."""
    stack = settings.stack
    return {store: Budget.of(store, configured, settings.data_dir, stack.store_high_ratio,
                             stack.store_low_ratio)
            for store, configured in (("run", stack.run_store_bytes),
                                      ("build", stack.build_store_bytes),
                                      ("registry", settings.registry.registry_bytes),
                                      ("homes", stack.home_store_bytes),
                                      ("state", settings.state.state_store_bytes))}


def cleaned_stores(settings: Settings) -> list[str]:
    """The stores this service keeps: the embedded stack's engines (an external engine, or builds
    on Kubernetes, are their operators' to keep)."""
    out = []
    if not settings.service.api_only and not settings.stack.run_docker_host:
        out.append("run")
    if settings.builds.build_executor == "engine" and not settings.stack.build_docker_host:
        out.append("build")
    if datadir.embedded_registry(settings):
        out.append("registry")
    return out


class StorageKeeper:
    def __init__(self, settings: Settings, store: StateStore, metrics: Metrics, owner: str,
                 wanted: Names | None = None, building: Names | None = None,
                 homes: Homes | None = None) -> None:
        self.settings = settings
        self.homes = homes  # with the run store: expired home volumes are removed too
        self.wanted = wanted  # images kept wherever they are: the base's, warm pools' (WarmImages)
        self.building = building  # images of builds in progress (the build executor's listing)
        self.store = store
        self.metrics = metrics
        self.owner = owner
        self.budgets = budgets(settings)
        self.stores = cleaned_stores(settings)
        if homes is not None and "run" in self.stores:
            self.stores.append("homes")
        self.stores.append("state")  # the state store is every service's
        self.drain_seconds = registry_collection.DRAIN  # builds under way waited for, at most
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._asked: set[str] = set()
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

    async def protected(self) -> set[str]:
        """Images no cleaner removes: the base and build images, what ``wanted`` names (warm
        pools), images of builds in progress."""
        names = {base_image.image_name(self.settings), builder_image.image_name(self.settings)}
        for source in (self.wanted, self.building):
            if source is not None:
                names.update(await source())
        for name in [n for n in names if "@" not in n]:
            # a tag names what bindery pushed under it: the run engine knows it by that digest
            digest = await self.store.pushed_digest(name)
            if digest:
                names.add(by_digest(name, digest))
        return names

    async def clean(self, name: str) -> CleanPass | None:
        """One pass over store ``name`` if this process holds its lease (else None)."""
        if not await self._lease(name):
            return None
        if name == "registry":
            result = await self._clean_registry()
        else:
            cleaner = self.cleaner(name)
            cleaner.protected |= await self.protected()
            if name in self._asked:  # found full: clean above the low mark, not only the high
                cleaner.budget = dataclasses.replace(cleaner.budget, high=cleaner.budget.low)
            try:
                for image in await asyncio.to_thread(_running_images, cleaner):
                    await self.used(image)  # seen in use: most recently used now
                result = await asyncio.to_thread(cleaner.clean, await self.used_at())
            finally:
                cleaner.client.close()
        self._count(name, result)
        return result

    def _count(self, name: str, result: CleanPass) -> None:
        self.metrics.store_bytes.labels(name).set(result.after)
        self.metrics.store_reclaimed.labels(name).inc(result.reclaimed)
        self.metrics.store_removed.labels(name).inc(len(result.removed))
        self.metrics.store_clean_time.labels(name).inc(result.seconds)

    async def _clean_registry(self) -> CleanPass:
        settings = self.settings
        started = time.monotonic()
        with http_clients.client(timeout=settings.registry.registry_timeout) as client:
            client.auth = RegistryAuth(datadir.registry_credential(settings))
            cleaner = RegistryCleaner(
                client, settings.registry.url, settings.registry.host,
                settings.registry.image_prefix, datadir.StackPaths.of(settings).registry_data,
                self.budgets["registry"], settings.stack.store_clean_grace_seconds)
            protected = await self.protected() | set(await self._serving())
            deleted: list[str] = []
            # deleted manifests free nothing until collected: plan only once that has been done
            if await self.store.get(GC_PENDING, "registry") is None:
                used = await asyncio.to_thread(cleaner.measure, cleaner.folder)
                manifests = await asyncio.to_thread(cleaner.manifests) \
                    if used > cleaner.budget.high else []
                plan = cleaner.plan(used, manifests, await self.registry_used_at(cleaner, manifests),
                                    protected, time.time())
                for manifest in plan.victims:
                    if await asyncio.to_thread(cleaner.delete, manifest):
                        deleted.append(manifest.names(cleaner.host)[0])
                before = plan.used
                if deleted:
                    await self.store.put(GC_PENDING, "registry", {"at": time.time()}, USED_TTL)
            else:
                before = await asyncio.to_thread(cleaner.measure, cleaner.folder)
            result = CleanPass("registry", before, before, deleted)
            if await self.store.get(GC_PENDING, "registry") is not None:
                collected = await self._collect()
                if collected is not None:
                    result.collect_seconds = collected
                    await self.store.delete(GC_PENDING, "registry")
                result.after = await asyncio.to_thread(cleaner.measure, cleaner.folder)
        result.seconds = time.monotonic() - started
        if deleted or result.collect_seconds:
            log.info("registry: %d images deleted, %d bytes reclaimed (collection %.1f s), %d of %d "
                     "bytes used", len(deleted), result.reclaimed, result.collect_seconds,
                     result.after, self.budgets["registry"].bytes,
                     extra={"store": "registry", "reclaimed": result.reclaimed,
                            "used": result.after, "removed": deleted[:50]})
        return result

    async def registry_used_at(self, cleaner: RegistryCleaner, manifests) -> dict[str, float]:
        """When each image was last launched; one never launched, since bindery pushed it; one
        neither launched nor pushed on record (forgotten, or written by someone else), never."""
        used_at = await self.used_at() if manifests else {}
        for manifest in manifests:
            names = manifest.names(cleaner.host)
            if not any(n in used_at for n in names):
                pushed = [t for t in [await self.store.pushed_at(n) for n in names] if t]
                used_at[names[0]] = max(pushed, default=0.0)
        return used_at

    async def _collect(self) -> float | None:
        """Run the registry's garbage collector, the registry read-only meanwhile; its seconds,
        or None when builds still run after the drain (their pushes would be refused: the next
        pass collects)."""
        timeout = self.settings.registry.registry_gc_timeout
        # announced first: a launch that sees it waits before building, so none starts after this
        await registry_collection.begin(self.store, self.owner,
                                        timeout + registry_collection.DRAIN + 60)
        try:
            # Builds under way are waited for (bounded), new ones wait for the collection: a
            # steady stream of builds would otherwise defer every collection.
            try:
                await wait_until_async(self._no_builds, timeout=self.drain_seconds, interval=0.5,
                                       cap=2.0, what="builds under way to end")
            except WaitTimeout:
                log.info("registry: collection deferred, builds are in progress",
                         extra={"building": (await self._builds())[:20]})
                return None
            started = time.monotonic()
            done = await asyncio.to_thread(registry_server.garbage_collect, self.settings, timeout,
                                           log.info)
            if done.returncode != 0:
                raise RuntimeError(f"garbage-collect exited {done.returncode}: "
                                   f"{(done.stderr or done.stdout).strip()[-300:]}")
            return max(time.monotonic() - started, 1e-6)
        finally:
            await registry_collection.end(self.store)

    async def _builds(self) -> list[str]:
        # builds another process announced count too: one that announced before the collection's
        # record was written is seen here, one announced after it sees the record and waits
        return [*(await self.building() if self.building is not None else []),
                *await registry_collection.announced_builds(self.store)]

    async def _no_builds(self) -> bool:
        return not await self._builds()

    async def _serving(self) -> list[str]:
        """Images of the run engine's containers (running servers), when it is the stack's."""
        if self.settings.stack.run_docker_host or self.settings.service.api_only:
            return []
        client = docker_client(self.settings.run_socket, 60)
        try:
            return [c["Image"] for c in await asyncio.to_thread(client.api.containers, all=True)
                    if c.get("Image")]
        finally:
            client.close()

    def home_cleaner(self) -> HomeCleaner:
        settings = self.settings
        return HomeCleaner(lambda: docker_client(settings.run_socket, 60).api,
                           home_folder(settings), self.homes)

    async def clean_homes(self) -> HomePass | None:
        """One pass over the home volumes if this process holds their lease (else None)."""
        if self.homes is None or not await self._lease("homes"):
            return None
        used = await self.homes.last_used()
        result = await asyncio.to_thread(self.home_cleaner().clean, used)
        self.metrics.store_bytes.labels("homes").set(result.after)
        self.metrics.store_reclaimed.labels("homes").inc(result.reclaimed)
        self.metrics.store_removed.labels("homes").inc(len(result.removed))
        return result

    async def clean_state(self) -> CleanPass | None:
        """One pass over the state store if this process holds its lease (else None): above its
        high mark, ended sessions are forgotten until it is under its low mark."""
        if not await self._lease("state"):
            return None
        budget, started = self.budgets["state"], time.monotonic()
        before = await self.store.used_bytes()
        forgotten = await self.store.shed(budget.low) if before > budget.high else []
        after = await self.store.used_bytes() if forgotten else before
        # by their launch ids: a session id is a capability (it replays the launch, token included)
        result = CleanPass(store="state", before=before, after=after,
                           removed=[service_log.launch_id(sid) for sid in forgotten],
                           seconds=time.monotonic() - started)
        if forgotten:
            log.info("state: %d ended launches forgotten, %d of %d bytes used", len(forgotten),
                     after, budget.bytes, extra={"store": "state", "reclaimed": result.reclaimed,
                                                 "used": after, "removed": result.removed[:50]})
        self._count("state", result)
        return result

    async def _lease(self, name: str) -> bool:
        owner = self.owner
        ttl = 3 * self.settings.stack.store_clean_interval_seconds

        now = time.time()

        def take(record):
            # Another's lease is written back as it was, which renews the record's own time to
            # live: its end is kept inside it, so a dead owner's lease still runs out (and not
            # never, while the others keep asking for it).
            if record is None or record.get("owner") == owner or record.get("until", 0) < now:
                return {"owner": owner, "until": now + ttl}, True
            return record, False

        return await self.store.update(LEASE, name, take, ttl)

    def store_full(self, name: str) -> None:
        """A build or pull found store ``name`` full: its pass runs now, not at the next period."""
        log.warning("the %s store is full: cleaning it now", name, extra={"store": name})
        self._asked.add(name)
        self._wake.set()

    async def run(self) -> None:
        interval = self.settings.stack.store_clean_interval_seconds
        while True:
            for name in self.stores:
                try:
                    await (self.clean_homes() if name == "homes" else
                           self.clean_state() if name == "state" else self.clean(name))
                except Exception as exc:  # an engine or store hiccup: the next pass tries again
                    log.warning("cleaning the %s store failed: %s: %s", name,
                                type(exc).__name__, exc)
            self._asked.clear()
            with contextlib.suppress(TimeoutError):  # the cleaning period, or a full store
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()

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
