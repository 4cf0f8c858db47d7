"""Warm pools: started, never-used servers of a repository's current image,
handed to a launch at once.

- Which repositories: `pool_specs` (patterns, like quota_tiers, each with a size) and, when
  `pool_auto_rate` > 0, any repository launched at least that often per minute. A pool's record
  is created by a launch (which says how to resolve the repository again).
- A pool server is started through the same Launcher path as a person's (followed to its real end),
  under a hub user of its own (`b-<repo>-p<random>`: the repository's prefix, so quotas count it),
  with no token minted. A launch claims one atomically in the state store
  (:meth:`PoolBook.take`), mints the person's token then, checks that it answers through the proxy
  with it, and is `ready`. The server left the pool in the claim's own change and never returns.
- One refiller at a time (a lease in the store), in whichever replica holds it: each round it
  re-resolves pooled repositories (through the ref cache), builds a new commit's image, starts
  servers of the current image up to the wanted size (a few at once, never the last places of a
  quota), retires the old image's free servers and free servers about to be culled as idle, shrinks
  idle pools, and reconciles the records with the hub's listing (a restarted or surviving replica
  adopts what another started; pool users nobody knows are removed). A repository the operator's
  rules refuse (banned, or off the allow list, e.g. after a restart with a new ban) wants no
  servers: its free ones are retired and none are started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from bindery.events import LaunchError
from bindery.launches.hub_api import Hub
from bindery.launches.launcher import Launcher
from bindery.launches.hub_users import PREFIX, user_name
from bindery.launches.quota import limits_for
from bindery.launches.reservations import HubSnapshot, ReservationBook
from bindery.settings import Settings
from bindery.specrules import SpecRules
from bindery.state import unavailable_errors
from bindery.state.base import OWNER, Record, StateStore
from bindery.state.pool_records import PoolBook, PoolOrigin, WarmServer, launch_rate, pool_key

log = logging.getLogger(__name__)

POOL_MARK = "p"  # a pool server's user: b-<repo hash>-p<8 hex>; people's have 8 hex only
POOL_USER = re.compile(rf"^{re.escape(PREFIX)}[0-9a-f]{{8}}-{POOL_MARK}[0-9a-f]{{8}}$")
CLAIM_ATTEMPTS = 2  # a claimed server that does not answer is removed; one more try, then cold
UNCREATED_GRACE = 60.0  # seconds a starting record may precede its hub user (created right after)

Prepare = Callable[[str, str], Awaitable[str]]  # (provider, spec) -> image, built and pulled


def is_pool_user(name: str) -> bool:
    return bool(POOL_USER.match(name))


def pools_enabled(settings: Settings) -> bool:
    return bool(settings.pools.pool_specs) or settings.pools.pool_auto_rate > 0


@dataclass(frozen=True)
class Claimed:
    """A warm server handed to one person: their token, checked through the proxy."""

    user: str
    url: str
    token: str


class PoolMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.size = Gauge("bindery_pool_size", "Pool servers, starting or ready (all pools)",
                          registry=registry)
        self.free = Gauge("bindery_pool_free", "Pool servers ready to be claimed",
                          registry=registry)
        self.wanted = Gauge("bindery_pool_wanted", "Pool servers the pools want (all pools)",
                            registry=registry)
        self.claims = Counter("bindery_pool_claims", "Launches that took a warm server",
                              registry=registry)
        self.misses = Counter("bindery_pool_misses",
                              "Launches of a pooled repository that found no free server",
                              registry=registry)


class Pools:
    """The claim step (any replica) and the refiller (the lease holder)."""

    def __init__(self, settings: Settings, store: StateStore, hub: Hub, launcher: Launcher,
                 reservations: ReservationBook, prepare: Prepare, owner: str,
                 registry: CollectorRegistry) -> None:
        self.settings = settings
        self.store = store
        self.book = PoolBook(store)
        self.hub = hub
        self.launcher = launcher
        self.reservations = reservations
        self.prepare = prepare
        self.owner = owner
        self.metrics = PoolMetrics(registry)
        self.rules = SpecRules(settings)
        self._starting: dict[str, asyncio.Task] = {}  # user -> its start, in this process
        self._preparing: dict[str, asyncio.Task] = {}  # pool key -> resolve/build/pull
        self._prepared: set[str] = set()  # images this process saw built and pulled
        self._removing: set[asyncio.Task] = set()
        self._loop: asyncio.Task | None = None

    # -- the claim step ------------------------------------------------------------------------
    def wanted_size(self, origin: PoolOrigin) -> int:
        return self.rules.tier(self.settings.pools.pool_specs, 0, origin.provider, origin.spec, origin.repo_url)

    async def claim(self, origin: PoolOrigin, ref: str, image: str,
                    on_user: Callable[[str], Awaitable[None]] | None = None) -> Claimed | None:
        """A free warm server of `image`, now the person's (token minted and checked through the
        proxy); None when the repository has no pool or no free server (the launch goes on the
        normal way). Notes the launch for the auto rate."""
        auto = self.settings.pools.pool_auto_rate > 0
        create = auto or self.wanted_size(origin) > 0
        if not create:
            return None
        key = pool_key(origin.repo, ref)
        window = self.settings.pools.pool_rate_window_seconds if auto else None
        for _ in range(CLAIM_ATTEMPTS):
            try:
                warm = await self.book.take(key, origin, image, create, window)
            except unavailable_errors() as exc:  # no pool now; the launch itself may still go
                log.warning("pool claim for %s skipped: state store: %s", key, exc)
                return None
            if warm is None:
                self.metrics.misses.inc()
                return None
            claimed = await self._hand_over(warm, on_user)
            if claimed is not None:
                self.metrics.claims.inc()
                return claimed
        return None

    async def _hand_over(self, warm: WarmServer,
                         on_user: Callable[[str], Awaitable[None]] | None) -> Claimed | None:
        done = False
        try:
            if on_user is not None:  # recorded first: a take-over removes it like any launch's
                await on_user(warm.user)
            token = await self.launcher.person_token(warm.user)
            url = self.settings.hub_public.rstrip("/") + warm.url
            await self.launcher.answers(url, token)
            done = True
            return Claimed(warm.user, url, token)
        except LaunchError as exc:
            log.warning("warm server %s does not answer (%s): removed", warm.user, exc)
            return None
        finally:
            if not done:  # failed or abandoned: it was claimed, so nobody else may have it
                await asyncio.shield(self.launcher.remove(warm.user, "pool_unusable"))

    # -- the refiller ----------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # a hub or store hiccup must not end the refiller; next round retries
                log.exception("pool refill round failed")
            await asyncio.sleep(self.settings.pools.pool_check_seconds)

    async def round(self) -> None:
        records = {key: rec for key in await self.book.keys()
                   if (rec := await self.book.get(key)) is not None}
        self._count(records)
        if not await self.book.hold_lease(self.owner, 3 * self.settings.pools.pool_check_seconds):
            return
        taken_at = time.time()
        users = await self.hub.list_users()
        listing = {u["name"]: (u.get("servers") or {}).get("") for u in users}
        await self._reconcile(records, listing)
        snapshot = HubSnapshot.of(users, taken_at)
        for key in list(records):
            record = await self.book.get(key)  # after the reconciliation's changes
            if record is not None:
                await self._tend(key, record, listing, snapshot)

    def _count(self, records: dict[str, Record]) -> None:
        servers = [s for rec in records.values() for s in rec["servers"].values()]
        free = sum(1 for s in servers if s["ready"])
        self.metrics.size.set(len(servers))
        self.metrics.free.set(free)
        self.metrics.wanted.set(sum(self._wanted(rec, time.time()) for rec in records.values()))

    def _wanted(self, record: Record, now: float) -> int:
        origin = _origin(record)
        if self.rules.refusal(origin.provider, origin.spec) is not None:
            return 0  # refused by the operator's rules: nothing of it is kept running
        configured = self.wanted_size(origin)
        s = self.settings
        if s.pools.pool_auto_rate <= 0:
            return configured
        busy = launch_rate(record, now, s.pools.pool_rate_window_seconds) >= s.pools.pool_auto_rate
        demand, offered = record.get("auto_at", 0.0), record.get("offered_at", 0.0)
        # Demand is not over before the pool could serve it (a first launch's build, a slow
        # spawn), within the longest a build and a start may take.
        unserved = offered < demand and now - demand < s.builds.build_timeout + s.launches.launch_timeout
        since = max(record.get("last_claim", 0.0), demand, offered)
        auto = s.pools.pool_auto_size if busy or unserved or now - since < s.pools.pool_idle_seconds else 0
        return max(configured, auto)

    async def _tend(self, key: str, record: Record, listing: dict[str, Any],
                    snapshot: HubSnapshot) -> None:
        now = time.time()
        s = self.settings
        if s.pools.pool_auto_rate > 0 and \
                launch_rate(record, now, s.pools.pool_rate_window_seconds) >= s.pools.pool_auto_rate:
            fields = {"auto_at": now}
            if any(srv["ready"] for srv in record["servers"].values()):
                # Served right now: demand that arrives while a warm server waits is not demand
                # the pool has yet to serve (else the pool outlived its idle time by a build +
                # launch timeout).
                fields["offered_at"] = now
            await self.book.patch(key, **fields)
            record.update(fields)
        wanted = self._wanted(record, now)
        if wanted == 0 and not record["servers"]:
            recent = [t for t in record.get("launches", []) if t > now - s.pools.pool_rate_window_seconds]
            if not recent and await self.book.delete_if_empty(key):
                self._preparing.pop(key, None)
            return
        image = record["image"]
        if wanted > 0:
            image = await self._follow_commits(key, record)
        await self._retire(key, record, image, wanted, now)
        if wanted > 0 and image in self._prepared:
            await self._refill(key, record, image, wanted, snapshot)

    async def _follow_commits(self, key: str, record: Record) -> str:
        """The pool's image, re-resolved in the background (a build may take minutes)."""
        task = self._preparing.get(key)
        image = record["image"]
        if task is not None and task.done():
            del self._preparing[key]
            if task.exception() is not None:
                log.warning("pool %s: could not prepare its image: %s", key, task.exception())
            else:
                image = task.result()
                self._prepared.add(image)
                if image != record["image"]:
                    log.info("pool %s follows a new image %s", key, image)
                    await self.book.patch(key, image=image)
                    record["image"] = image
            task = None
        if task is None:
            self._preparing[key] = asyncio.get_running_loop().create_task(
                self.prepare(record["provider"], record["spec"]))
        return image

    def _binder_options(self, origin: PoolOrigin) -> dict[str, str]:
        """BinderHub's request options that a warm server can know before anyone claims it (its
        pool's repository and link); the commit-bound ones are in the claiming launch's `ready`."""
        return {"repo_url": origin.repo_url, "binder_launch_host": self.settings.service.web_url,
                "binder_request": f"v2/{origin.provider}/{origin.spec}"}

    async def _retire(self, key: str, record: Record, image: str, wanted: int,
                      now: float) -> None:
        """Free servers of an old image, about to be culled as idle, or beyond the wanted size."""
        free_age = self.settings.launches.cull_idle_seconds / 2  # a claimed one keeps half the idle time
        ready = sorted(((srv["at"], user) for user, srv in record["servers"].items()
                        if srv["ready"]), reverse=True)
        keep = max(0, wanted - sum(1 for srv in record["servers"].values()
                                   if not srv["ready"] and srv["image"] == image))
        retire = []
        for at, user in ready:
            current = record["servers"][user]["image"] == image
            if current and now - at < free_age and keep > 0:
                keep -= 1
            else:
                retire.append(user)
        for user in await self.book.drop(key, retire) if retire else []:
            self._remove_later(user, "pool_retired")

    async def _refill(self, key: str, record: Record, image: str, wanted: int,
                      snapshot: HubSnapshot) -> None:
        have = sum(1 for srv in record["servers"].values() if srv["image"] == image)
        origin = _origin(record)
        s = self.settings
        per_repo = self.rules.tier(s.launches.quota_tiers, s.launches.max_servers_per_repo, origin.provider,
                                   origin.spec, origin.repo_url)
        # A pool never takes the last `pool_headroom` places of either quota from people.
        limits = limits_for(origin.repo, s.launches.max_servers - s.pools.pool_headroom,
                            per_repo - s.pools.pool_headroom)
        for _ in range(wanted - have):
            if sum(not t.done() for t in self._starting.values()) >= s.pools.pool_refill_concurrency:
                return
            user = user_name(origin.repo, POOL_MARK + secrets.token_hex(4))
            try:
                await self.reservations.reserve(user, snapshot, limits)
            except LaunchError:  # quota full (for pools): people keep the remaining places
                return
            if not await self.book.add_starting(key, user, image, self.owner, wanted):
                await self.reservations.release(user)
                return
            self._starting[user] = asyncio.get_running_loop().create_task(
                self._start_server(key, user, image, origin))

    async def _start_server(self, key: str, user: str, image: str, origin: PoolOrigin) -> None:
        ready = False
        try:
            async for event in self.launcher.launch(image, origin.repo, user, for_person=False,
                                                    options=self._binder_options(origin)):
                if event.phase == "ready":
                    url = str(event.data().get("url", ""))
                    path = url[len(self.settings.hub_public.rstrip("/")):]
                    await self.reservations.delivered(user)
                    ready = True
                    if not await self.book.mark_ready(key, user, path):  # retired meanwhile
                        self._remove_later(user, "pool_retired")
        except LaunchError as exc:
            log.warning("pool server %s for %s did not start: %s", user, image, exc.message)
        except Exception:
            log.exception("pool server %s for %s did not start", user, image)
        finally:
            if not ready:  # the launcher removed the user; the place and the record go too
                await asyncio.shield(self._forget(key, user))
            self._starting.pop(user, None)

    async def _forget(self, key: str, user: str) -> None:
        await self.reservations.release(user)
        await self.book.drop(key, [user])

    def _remove_later(self, user: str, outcome: str) -> None:
        task = asyncio.get_running_loop().create_task(self.launcher.remove(user, outcome))
        self._removing.add(task)
        task.add_done_callback(self._removing.discard)

    # -- reconciliation with the hub -------------------------------------------------------------
    async def _reconcile(self, records: dict[str, Record], listing: dict[str, Any]) -> None:
        """Make the records and the hub agree: servers gone from the hub leave the records;
        starting servers whose process died are adopted (ready on the hub) or removed; pool users
        the records do not know are removed."""
        now = time.time()
        known: set[str] = set()
        for key, record in records.items():
            known |= set(record["servers"]) | set(record["claimed"])
            gone = [u for u in record["claimed"] if u not in listing]
            if gone:
                await self.book.forget_claimed(key, set(gone))
            drop = []
            for user, srv in record["servers"].items():
                server = listing.get(user)
                if srv["ready"]:
                    if not server:  # culled or stopped behind bindery's back
                        drop.append(user)
                elif user in self._starting or await self._alive(srv["owner"]):
                    continue
                elif server and server.get("ready"):  # its starter died after the spawn
                    log.info("pool server %s adopted (its starter is gone)", user)
                    await self.book.mark_ready(key, user, server.get("url") or f"/user/{user}/")
                elif now - srv["at"] > max(self.settings.launches.launch_timeout, UNCREATED_GRACE):
                    drop.append(user)
                    self._remove_later(user, "pool_orphan")
            if drop:
                await self.book.drop(key, drop)
        for name in listing:
            if is_pool_user(name) and name not in known and name not in self._starting:
                log.info("removing pool server %s that no pool record knows", name)
                self._remove_later(name, "pool_orphan")

    async def _alive(self, owner: str) -> bool:
        return owner == self.owner or await self.store.get(OWNER, owner) is not None

    # -- shutdown --------------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Stop refilling: servers starting here are cancelled (and removed); ready ones stay
        in the pool for the other replicas or the restarted process."""
        tasks = [t for t in (self._loop, *self._starting.values(), *self._preparing.values())
                 if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._removing:
            await asyncio.gather(*self._removing, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.book.release_lease(self.owner)


def _origin(record: Record) -> PoolOrigin:
    return PoolOrigin(record["provider"], record["spec"], record["repo_url"], record["repo"])
