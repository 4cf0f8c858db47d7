"""The adapters one bindery instance uses for its launches, made once and passed to every launch.

`Services.create` wires them from the settings: the hub and registry clients, the build queue and its
executor, the launcher, pre-pulls, ref resolutions, the state store and the launch event log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from bindery import datadir
from bindery.builds.buildpack_mode import BuildpacksChooser
from bindery.builds.executors.base import BuildExecutor
from bindery.builds.queue import Build, BuildJob, BuildQueue
from bindery.builds.runner import build_executor
from bindery.builds.runner import run_build as run_one_build
from bindery.events import Event
from bindery.git_commands import GIT_SLOTS
from bindery.launches.homes import Homes
from bindery.launches.hub_api import Hub
from bindery.launches.launch_log import LaunchLog
from bindery.launches.launcher import LaunchConfig, Launcher
from bindery.launches.pools import Pools
from bindery.launches.prepull import Prepuller
from bindery.launches.reservations import MemoryReservationBook, ReservationBook
from bindery.launches.warm_images import WarmImages
from bindery.metrics import Metrics
from bindery.providers.refcache import RefCache
from bindery.registry_client import Registry, by_digest
from bindery.settings import Settings
from bindery.specrules import SpecRules
from bindery.stack.base_image import reference as base_image_reference
from bindery.state import open_store
from bindery.state.base import StateStore

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    registry: Registry
    hub: Hub
    builds: BuildQueue
    launcher: Launcher
    metrics: Metrics
    prepuller: Prepuller | None = None
    reservations: ReservationBook = field(default_factory=MemoryReservationBook)
    refs: RefCache | None = None  # shared ref resolutions (a crowd costs one)
    executor: BuildExecutor | None = None  # where builds run (engine containers or pods)
    # called with an image a launch is about to use (the storage keeper's "least recently used")
    image_used: Callable[[str], Awaitable[None]] | None = None
    store_full: Callable[[str], None] | None = None  # an image store ran out of disk: clean it now
    # called with each failed launch's record (launch id, repository, reason) for `bindery status`
    on_failure: Callable[[dict], Awaitable[None]] | None = None
    pools: Pools | None = None  # warm pools (bindery/launches/pools.py), when the settings name any
    rules: SpecRules | None = None  # banned_specs / allowed_specs, for where a repository moved
    store: StateStore | None = None  # where the digests bindery pushed are recorded
    own_store: bool = False  # the store was opened for these services (closed with them)
    launch_log: LaunchLog = field(default_factory=lambda: LaunchLog(None, 0, False, ""))
    warm_images: WarmImages | None = None  # base and pool images kept on the run side
    homes: Homes | None = None  # people's homes and resume links (bindery/launches/homes.py)

    @classmethod
    def create(cls, settings: Settings, store: StateStore | None = None) -> Services:
        metrics = Metrics(settings.service.metrics_repo_labels)
        GIT_SLOTS.configure(settings.providers.git_concurrency)
        # A build service (api_only) has no hub: its client is never called.
        hub = Hub(datadir.hub_api(settings), "" if settings.service.api_only else datadir.hub_token(settings),
                  settings.launches.hub_timeout)
        # Dockerfile repositories may say `ARG BINDERY_BASE_IMAGE` + `FROM ${BINDERY_BASE_IMAGE}`
        # to build on this stack's Jupyter-ready base without knowing its name.
        build_args = {"BINDERY_BASE_IMAGE": base_image_reference(settings)}
        chooser = BuildpacksChooser.from_settings(settings)  # one per service: its probe is cached

        executor = build_executor(settings)

        def run_build(job: BuildJob) -> AsyncIterator[Event]:
            return run_one_build(settings, chooser, executor, job, build_args)

        async def occupied() -> list[tuple[str, str]]:  # the engine's builds: slots across processes
            return [(b.image, b.repo) for b in await executor.running()]

        def build_finished(build: Build) -> None:
            status = "failure" if build.error else "success"
            duration = (build.finished or 0) - (build.started or 0)
            metrics.build_time.labels(status).observe(duration)
            metrics.build_outcomes.labels(status).inc()
            log.log(logging.WARNING if build.error else logging.INFO, "build %s", status, extra={
                "outcome": "build", "status": status, "duration": round(duration, 3),
                "image": build.job.image, "reason": build.error.message if build.error else ""})
            repo = metrics.repo_label(build.job.repo, admit=build.error is None)
            metrics.build_count.labels(status, build.job.provider, repo).inc()

        builds = BuildQueue(run_build, settings.builds.build_slots,
                            settings.builds.build_slots_per_repo,
                            settings.builds.build_slots_per_client, on_finish=build_finished,
                            occupied=occupied, poll=settings.builds.build_slot_poll_seconds,
                            finishing=executor.finishing,
                            kept_bytes=settings.builds.session_log_max_bytes)
        launcher = Launcher(hub, LaunchConfig(
            hub_url=settings.hub_public, timeout=settings.launches.launch_timeout,
            retries=settings.launches.launch_retries, token_lifetime=settings.launches.cull_max_age_seconds,
            start_slots=settings.launches.launch_start_slots),
            on_cleanup=lambda outcome: metrics.cleanups.labels(outcome).inc(),
            on_attempt=lambda status, retries, seconds: metrics.launch_time.labels(
                status, str(retries)).observe(seconds))
        metrics.queue_length.set_function(lambda: builds.queue_length)
        metrics.slots_used.set_function(lambda: len(builds.running))
        metrics.inprogress_builds.set_function(lambda: len(builds.running))
        registry = Registry(settings.registry.url, settings.registry.registry_timeout,
                            settings.registry.registry_retries, datadir.registry_credential(settings))
        prepuller = Prepuller(settings.run_socket, settings.launches.prepull_timeout,
                              settings.launches.prepull_progress_interval,
                              settings.launches.prepull_concurrency) \
            if prepull_wanted(settings) else None
        own_store = store is None
        refs = RefCache(settings)
        metrics.watch_github_rate_limit(lambda: refs.tools.api.rate_limit_remaining)
        store = open_store(settings) if own_store else store
        homes = Homes(store, settings.launches.home_retention_days * 86400.0,
                      settings.launches.home_per_person) if store is not None else None
        return cls(settings, registry, hub, builds, launcher, metrics, prepuller,
                   refs=refs, executor=executor, rules=SpecRules(settings),
                   store=store, own_store=own_store,
                   launch_log=LaunchLog.from_settings(settings), homes=homes)

    async def launchable(self, image: str) -> str | None:
        """What to launch for ``image`` (a tag name): the digest bindery pushed under that name,
        while the registry has it; None when bindery has no record (never built here, or a tag
        someone else wrote) or the registry lost it: then it is built."""
        digest = await self.store.pushed_digest(image) if self.store is not None else None
        if digest is None:
            return None
        reference = by_digest(image, digest)
        return reference if await self.registry.image_exists(reference) else None

    async def aclose(self) -> None:
        if self.warm_images is not None:
            await self.warm_images.aclose()
        if self.pools is not None:
            await self.pools.aclose()
        await self.builds.aclose()
        await self.launcher.aclose()
        await self.hub.aclose()
        await self.registry.aclose()
        if self.prepuller is not None:
            await self.prepuller.aclose()
        if self.refs is not None:
            await self.refs.aclose()
        if self.executor is not None:
            await self.executor.aclose()
        if self.own_store and self.store is not None:
            await self.store.aclose()


def prepull_wanted(settings: Settings) -> bool:
    """Pre-pull through the run side's engine socket: not for a build service, and not on
    Kubernetes, where there is no such socket and KubeSpawner's own progress events (which the
    launch forwards) show the pull."""
    return settings.launches.prepull and not settings.service.api_only and settings.builds.build_executor == "engine"
