"""Resolved refs, shared: a crowd opening one link costs one resolution.

Concurrent requests for the same (provider, repository, ref) wait for one resolution in flight;
its commit is then reused for ``ref_cache_seconds`` (a resolution made with a signed-in person's own
token only by that person). Failures are shared by the requests that waited
for them but never cached. Full SHAs need no resolution and skip the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from bindery.providers.base import RepoProvider
from bindery.providers.tools import ResolveTools
from bindery.settings import Settings
from bindery.spec import FULL_SHA

Key = tuple[str, str, str, str]


class RefCache:
    def __init__(self, settings: Settings, tools: ResolveTools | None = None) -> None:
        self.ttl = settings.providers.ref_cache_seconds
        self.max_entries = max(1, settings.providers.ref_cache_entries)
        self.tools = tools or ResolveTools.create(settings)
        self._resolved: OrderedDict[Key, tuple[float, str]] = OrderedDict()
        self._in_flight: dict[Key, asyncio.Future[str]] = {}
        self.resolutions = 0  # provider.resolve() calls actually made

    async def resolve(self, provider: RepoProvider) -> str:
        provider.tools = self.tools
        # Every request checks (and pins) its own address, even when the commit comes from the cache:
        # the build's clone uses the pin.
        await provider.check_outbound()
        # A resolution made with a person's own token is theirs: nobody else gets it from here.
        key = (provider.name, provider.repo_url, provider.unresolved_ref, provider.credential_owner)
        if FULL_SHA.match(provider.unresolved_ref):
            return await provider.resolve()
        now = time.monotonic()
        hit = self._resolved.get(key)
        if hit is not None and hit[0] > now:
            provider.commit = hit[1]
            return hit[1]
        pending = self._in_flight.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_task(self._resolve(key, provider))
            self._in_flight[key] = pending
            pending.add_done_callback(lambda _: self._in_flight.pop(key, None))
        # shield: one waiter going away (a closed stream) must not cancel the others' resolution
        commit = await asyncio.shield(pending)
        provider.commit = commit
        return commit

    async def _resolve(self, key: Key, provider: RepoProvider) -> str:
        self.resolutions += 1
        commit = await provider.resolve()
        if self.ttl > 0:
            self._resolved[key] = (time.monotonic() + self.ttl, commit)
            self._resolved.move_to_end(key)
            while len(self._resolved) > self.max_entries:
                self._resolved.popitem(last=False)
        return commit

    async def aclose(self) -> None:
        for task in list(self._in_flight.values()):
            task.cancel()
        await self.tools.aclose()
