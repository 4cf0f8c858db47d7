"""The build stage of a launch: build an image (or join the build of it already under way), push
it, and say which digest was pushed.

A new build announces itself in the state store before it looks for a registry collection (see
bindery/state/registry_collection.py), so a collection starting in another process at the same
moment either defers or makes this build wait; the announcement is withdrawn when the build ends.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

from bindery.builds.queue import BuildJob
from bindery.builds.log_access import is_private
from bindery.builds.runner import build_log_url, build_logs
from bindery.builds.executors.base import build_name
from bindery.events import Event, LaunchError
from bindery.launches.collection_wait import announce_build, collection_over, retire_build
from bindery.launches.services import Services
from bindery.providers import RepoProvider
from bindery.providers.data_records import RecordProvider
from bindery.registry_client import by_digest

log = logging.getLogger(__name__)


def joining_build(services: Services, image: str) -> bool:
    return image in services.builds.active


def judge_move(services: Services, provider: RepoProvider) -> None:
    """The operator's rules judge a moved repository where it lives now, too: a ban (or an allow
    list) on the new URL is not dodged through the old name's redirect. The door judged the name
    the person used; git follows the move only once it is known (resolution or clone)."""
    if provider.moved_to is None or services.rules is None:
        return
    spec = f"{quote(provider.moved_to, safe='')}/{quote(provider.unresolved_ref, safe='')}"
    refused = services.rules.refusal("git", spec)
    if refused is not None:
        raise LaunchError(f"The repository {provider.repo_url} has moved to {provider.moved_to}. "
                          f"{refused}", 403)


async def build_image(services: Services, provider: RepoProvider, repo_key: str, image: str,
                      commit: str, build_only: bool = False, client: str = "",
                      pushed: list[str] | None = None) -> AsyncIterator[Event]:
    """Build ``image`` (or join its build) and record the digest it pushed; ``pushed`` gets the
    reference to launch (the image by that digest)."""
    local = provider.name == "local"  # a folder is built as it is, not at a ref
    if provider.prebuilt_image is None and not joining_build(services, image) \
            and await services.registry.image_exists(image):
        yield Event(phase="building", message="The registry has an image of this name that this "
                    "service has no record of pushing: it is not launched, but built again.\n")
    joining = image in services.builds.active
    record = isinstance(provider, RecordProvider)
    folder = None
    if record and not joining:  # a DOI record: its files, downloaded, are what is built
        folder = provider.content_folder(image)
        async for event in provider.download(folder):
            yield event
    if not (local or record or joining):
        await provider.locate()  # a moved repository is cloned from where it lives now
        judge_move(services, provider)
    private = is_private(services.settings, provider.repo_url)
    if private:  # before it starts: its log is never served without its key
        build_logs(services.settings).mark_private(build_name(image))
    job = BuildJob(image=image, repo=repo_key, private=private,
                   commit=None if local or record else commit,
                   source=str(folder) if folder else provider.repo_url, provider=provider.name,
                   git_config=tuple(provider.git_config), client=client)
    joining = job.image in services.builds.active
    announced = False
    if joining:
        services.metrics.build_joins.inc()
    else:  # a new build's push needs a writable registry
        announced = await announce_build(services, image)
        async for event in collection_over(services, image if announced else None):
            yield event
        joining = job.image in services.builds.active
    try:
        async for event in _follow_build(services, provider, job, joining, folder, build_only, pushed):
            yield event
    finally:
        if announced:
            await retire_build(services, image)


async def _follow_build(services: Services, provider: RepoProvider, job: BuildJob, joining: bool,
                        folder: Path | None, build_only: bool,
                        pushed: list[str] | None) -> AsyncIterator[Event]:
    image = job.image
    build = services.builds.submit(job)
    yield Event(phase="waiting" if build.position else "building",
                message=("Joining the build of this image already under way\n" if joining
                         else f"Building {image}\n"),
                build_log_url=build_log_url(services.settings, image, job.private))
    log.info("%s the build of %s", "joined" if joining else "queued", image,
             extra={"build": image, "position": build.position})  # the build's lines name it
    if folder is not None and joining:
        provider.remove_content(folder)  # another launch's build of this image has its own copy
        folder = None
    digest = None
    try:
        async for event in build.follow():
            if event.model_extra and event.model_extra.get("digest"):
                digest = str(event.model_extra["digest"])
            yield event
    except LaunchError:
        if folder is not None:
            provider.remove_content(folder)
        raise
    if folder is not None:  # built; a launch cancelled mid-build leaves it to content_folder's sweep
        provider.remove_content(folder)
    if digest is not None and services.store is not None:
        await services.store.record_digest(image, digest)
    else:  # a build another process ran and recorded (its success line was not seen here)
        digest = await services.store.pushed_digest(image) if services.store is not None else None
    if digest is None:
        raise LaunchError("The build ended, but which image it pushed (its digest) is unknown, so "
                          "nothing is launched. Please launch again.", 503)
    if pushed is not None:
        pushed.append(by_digest(image, digest))
    yield Event(phase="built", message="Built image.\n" if build_only else
                "Built image, launching...\n", imageName=image)
