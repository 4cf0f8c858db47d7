"""Which buildpacks a build uses: the `buildpacks` setting; for `auto`, a short reachability probe.

`standard` (repo2docker's own buildpacks) needs Docker Hub (its base image) and a conda channel
(its Python); `mirror` (bindery's) needs only the Debian mirror and a PyPI index. `auto` probes the
first two concurrently within a bound, remembers the answer for a while (builds in a burst share
one probe) and says why it picked what it picked, for the build log.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bindery import http_clients
from bindery.settings import Settings


@dataclass(frozen=True)
class ModeChoice:
    mode: str  # "standard" or "mirror"
    reason: str  # a sentence for the build log


async def reachable(url: str, timeout: float) -> str:
    """"" when `url` answers HTTP at all (any status: a registry's 401 is an answer), else why not."""
    try:
        verify = ssl.create_default_context()  # the host's CA store (a re-signing proxy's CA too)
        async with http_clients.async_client(timeout=timeout, verify=verify) as client:
            await client.get(url)
        return ""
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {str(exc)[:120] or 'no answer'}"


class BuildpacksChooser:
    def __init__(self, setting: str, docker_hub_url: str, conda_channel_url: str, timeout: float,
                 cache_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.setting = setting
        self.targets = {"Docker Hub": docker_hub_url, "the conda channel": conda_channel_url}
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cached: tuple[float, ModeChoice] | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> BuildpacksChooser:
        return cls(settings.builds.buildpacks, settings.builds.docker_hub_url, settings.builds.conda_channel_url,
                   settings.builds.buildpacks_probe_timeout, settings.builds.buildpacks_probe_cache_seconds)

    async def choose(self) -> ModeChoice:
        if self.setting != "auto":
            return ModeChoice(self.setting, f"the service's buildpacks setting is '{self.setting}'")
        async with self._lock:  # concurrent builds wait for one probe instead of each probing
            now = self.clock()
            if self._cached is not None and now - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            choice = await self._probe()
            self._cached = (self.clock(), choice)
            return choice

    async def _probe(self) -> ModeChoice:
        names = list(self.targets)
        answers = await asyncio.gather(*(reachable(self.targets[n], self.timeout) for n in names))
        missing = [f"{n} ({self.targets[n]}) is not reachable: {why}"
                   for n, why in zip(names, answers, strict=True) if why]
        if missing:
            return ModeChoice("mirror", "auto: " + "; ".join(missing) + f" (probed within "
                              f"{self.timeout:g} s), so bindery's mirror buildpacks (Debian mirror "
                              "+ PyPI) are used")
        return ModeChoice("standard", "auto: Docker Hub and the conda channel both answer, so "
                          "repo2docker's standard buildpacks are used")
