"""One launch as data flowing through stages:

    spec → provider (resolve ref) → image name → registry (exists?) → build (queue) → launch → ready

`launch()` yields events; the web layer turns them into an event stream, the CLI into progress.
`Services` (bindery/launches/services.py) holds the adapters one bindery instance uses; it is
created once and passed in.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import unquote

from bindery.builds.buildpacks.build_notice import NOTICE_LABEL, read_label
from bindery import service_log
from bindery.events import Event, LaunchError, StoreFull
from bindery.image_names import image_name
from bindery.launches.build_stage import build_image, judge_move
from bindery.launches.hub_api import HubError, HubUnavailable
from bindery.launches.launcher import hub_backoff
from bindery.launches.homes import RESUME, LaunchHome, ResumeGrant, launch_home
from bindery.launches.hub_users import user_name
from bindery.launches import people
from bindery.launches.quota import hub_snapshot, limits_for
from bindery.launches.services import Services
from bindery.launches.reservations import HubSnapshot, QuotaFull
from bindery.providers import RepoProvider, get_provider
from bindery.providers.credentials import person_prefix
from bindery.repoid import identify
from bindery.settings import Settings
from bindery.specrules import SpecRules
from bindery.state.pool_records import PoolOrigin

log = logging.getLogger(__name__)


async def launch(services: Services, provider_name: str, spec: str,
                 allow_local: bool = False, build_only: bool = False,
                 on_user: Callable[[str], Awaitable[None]] | None = None,
                 client: str = "", request_origin: str = "", build_token: bool = False,
                 person: str | None = None) -> AsyncIterator[Event]:
    """Every event of one launch; the last is `ready` or `failed` (errors become `failed`).

    `allow_local` admits the `local` provider (a folder): only the CLI on the same machine sets it.
    `build_only` (or the api_only setting) stops once the image is in the registry: the last
    event is then `ready` with `imageName` and no server, as BinderHub's api-only mode ends.
    `on_user(name)` is awaited with the hub user's name once its quota place is taken, before the
    user is created (launch sessions record it, so another process can clean it up).
    `client` is who asked (the door's client key): the build queue takes turns between clients.
    `request_origin` (the request's Origin, else its Sec-Fetch-Site) and `build_token` (whether
    one was used) go into the launch event log, as BinderHub logs them.
    `person`: the signed-in person launching (bindery/launches/people.py: the server is a named
    server of theirs, their own token reaches their private repositories, their home is mounted); None: anonymous (a resume
    link's home, or a new home with its resume link). Provider ``resume`` with spec
    ``<key>[/<ref>]`` (bindery/launches/homes.py) launches what that resume link recorded.
    """
    build_only = build_only or services.settings.service.api_only
    provider: RepoProvider | None = None
    started = time.monotonic()
    context = service_log.current()
    if context is None:  # a launch outside a session (the CLI's): an id of its own
        context = service_log.LaunchContext(launch_id=secrets.token_hex(6),
                                            spec=f"{provider_name}/{spec}")
        service_log.set_current(context)
    context.phase = "fetching"
    outcome: Event | None = None
    try:
        grant = None
        if provider_name == RESUME and not build_only:
            grant = await _redeem(services, spec)
            provider_name, spec = grant.provider, grant.spec
        yield Event(phase="fetching", message=f"Resolving {spec}...\n")
        provider = get_provider(services.settings, provider_name, spec, allow_local)
        await _for_person(services, provider, person)
        context.repo, context.ref = provider.repo_url, getattr(provider, "unresolved_ref", "") or ""
        log.info("launch requested", extra={"build_only": build_only})
        final = [provider]  # the request as launched (its ref may fall back to HEAD)
        async for event in _stages(services, provider, build_only, on_user, client, final,
                                   (person, grant)):
            if event.phase != context.phase:
                context.phase = event.phase
            if event.terminal:
                outcome = event
            if event.phase == "ready" and not build_only:
                launched = final[0]
                services.launch_log.record(launched.name, launched.spec, launched.commit or "",
                                           build_token=build_token, request_origin=request_origin)
            yield event
    except LaunchError as exc:
        if isinstance(exc, StoreFull) and services.store_full is not None:
            services.store_full(exc.store)  # its cleaner makes room now, not at its next period
        outcome = exc.event()
        await _record_failure(services, context, outcome)
        yield outcome
    except HubError as exc:  # a hub call outside the launcher's retries
        outcome = Event(phase="failed", message=f"Could not launch: {exc}")
        await _record_failure(services, context, outcome)
        yield outcome
    except Exception as exc:  # a bug must still end the stream clearly, and never the service
        log.exception("launch of %s/%s failed unexpectedly", provider_name, spec[:200])
        services.metrics.internal_errors.inc()
        outcome = Event(phase="failed", message=f"bindery hit an internal error "
                        f"({type(exc).__name__}); the operators can find it in the service log.")
        await _record_failure(services, context, outcome)
        yield outcome
    finally:
        services.metrics.launch_outcomes.labels(_log_outcome(outcome, time.monotonic() - started)).inc()


async def _record_failure(services: Services, context: service_log.LaunchContext,
                          outcome: Event) -> None:
    if services.on_failure is None:
        return
    try:
        await services.on_failure({"at": time.time(), "launch_id": context.launch_id,
                                   "repo": context.repo or context.spec, "ref": context.ref,
                                   "phase": context.phase, "reason": outcome.message.strip()[:500]})
    except Exception as exc:  # the record is for operators; the person still gets the failure
        log.warning("could not record the failure: %s: %s", type(exc).__name__, exc)


def _log_outcome(outcome: Event | None, duration: float) -> str:
    """The one line that says how a launch ended: ready, failed (and why) or abandoned."""
    if outcome is None:
        status, reason = "abandoned", "the launch stopped before it ended (nobody watching, "\
            "or its process handed it over)"
    else:
        status, reason = ("ready" if outcome.phase == "ready" else "failed"), outcome.message
    extra = (outcome.model_extra or {}) if outcome is not None else {}
    log.log(logging.WARNING if status == "failed" else logging.INFO, "launch %s", status, extra={
        "outcome": "launch", "status": status, "duration": round(duration, 3),
        "reason": reason.strip() if status != "ready" else "",
        "status_code": extra.get("status_code"), "image": extra.get("image") or
        extra.get("imageName"), "pooled": bool(extra.get("pooled"))})
    return status


def repo_identity(settings: Settings, provider: RepoProvider) -> tuple[str, str]:
    """(key, slug): the repository's normal form (bindery/repoid.py), so that however it is spelled
    it has one quota, one image, one build-fairness key and one metric label; and the readable part
    of its image name. A local folder is its path, a pre-built image its reference."""
    if provider.name == "local" or provider.prebuilt_image is not None:
        return provider.repo_url, provider.slug
    identity = identify(settings, provider.repo_url)
    return identity.url, identity.slug or provider.slug


def _count_launch(services: Services, status: str, provider: RepoProvider | None) -> None:
    if provider is None:  # the spec did not even parse: nothing to count it under
        return
    key, _ = repo_identity(services.settings, provider)
    repo = services.metrics.repo_label(key, admit=status == "success")
    services.metrics.launch_count.labels(status, provider.name, repo).inc()


async def _stages(services: Services, provider: RepoProvider, build_only: bool = False,
                  on_user: Callable[[str], Awaitable[None]] | None = None, client: str = "",
                  final: list[RepoProvider] | None = None,
                  home_of: tuple[str | None, ResumeGrant | None] = (None, None)
                  ) -> AsyncIterator[Event]:
    settings = services.settings
    per_repo = SpecRules(settings).tier(settings.launches.quota_tiers, settings.launches.max_servers_per_repo,
                                        provider.name, provider.spec, provider.repo_url)
    repo_key, slug = repo_identity(settings, provider)
    limits = limits_for(repo_key, settings.launches.max_servers, per_repo)
    person = home_of[0]
    # the name the reservation holds: a new user, or a new named server of the signed-in person
    user = people.new_server(person, repo_key) if person else user_name(repo_key, secrets.token_hex(4))
    # The quota needs only the repository: ask the hub while git resolves the ref.
    # A build-only request starts no server: it takes no place.
    listing = None if build_only else asyncio.ensure_future(_hub_snapshot(services))
    try:
        try:
            commit = await _resolve(services, provider)
        except LaunchError as exc:
            fallback = head_fallback(settings, provider, exc)
            if fallback is None:
                raise
            yield Event(phase="waiting", ref_fallback="HEAD", message=(
                f"The branch {provider.unresolved_ref!r} no longer exists in {provider.repo_url} "
                "(repositories renamed 'master' to 'main', some deleted it). Launching the "
                f"repository's default branch (HEAD) instead of {provider.unresolved_ref!r}; "
                "please update your links to use HEAD or a commit.\n"))
            provider = fallback
            await _for_person(services, provider, person)
            if final is not None:
                final[0] = provider
            commit = await _resolve(services, provider)
        judge_move(services, provider)
        image = provider.prebuilt_image or image_name(
            settings.registry.host, settings.registry.image_prefix, slug, repo_key, commit)
        # the image provider checked its registry while resolving; bindery's own images are
        # launched by the digest it pushed, never by what the tag points to now
        launch_ref = image if provider.prebuilt_image else await services.launchable(image)
        if listing is not None and services.pools is not None and home_of == (None, None):
            # A warm server is already counted against the quotas (it needs no new place), and
            # its image is in the registry (no need to ask). Asked also before the first build:
            # the claim notes the launch, which is what starts a repository's pool (its refiller
            # then builds and follows the digest itself).
            warm = await services.pools.claim(
                PoolOrigin(provider.name, provider.spec, provider.repo_url, repo_key),
                provider.unresolved_ref, launch_ref or image, on_user)
            if warm is not None:
                yield Event(phase="built", message="Found built image, launching...\n",
                            imageName=image)
                yield Event(phase="launching", message="Took a warm server from this "
                            "repository's pool (started for nobody before you).\n", pooled=True)
                _count_launch(services, "success", provider)
                yield _ready(services, provider, image, Event(
                    phase="ready", message=f"server running at {warm.url}\n", url=warm.url,
                    token=warm.token, user=warm.user, pooled=True),
                    await image_notice(services, image))
                return
        log.info("resolved to commit %s, image %s (%s)", commit, image,
                 "built" if launch_ref else "to build",
                 extra={"commit": commit, "image": image, "launch_ref": launch_ref})
        if listing is not None:  # check and take in one step, before building or launching
            try:
                await services.reservations.reserve(user, await listing, limits)
            except QuotaFull as exc:  # counted as BinderHub counts a launch its quota refused
                _count_launch(services, exc.quota, provider)
                raise
    finally:
        if listing is not None and not listing.done():
            listing.cancel()
            await asyncio.gather(listing, return_exceptions=True)
    if build_only:
        async for event in _build_only(services, provider, repo_key, image, commit, launch_ref,
                                       client):
            yield event
        return
    delivered = False
    try:
        if on_user is not None:
            await on_user(user)
        async for event in _build_and_launch(services, provider, repo_key, image, commit, launch_ref,
                                             user, client, home_of):
            if event.phase == "ready":
                await services.reservations.delivered(user)
                delivered = True
            yield event
    finally:
        if not delivered:  # failed or abandoned: the place is free again
            await services.reservations.release(user)


async def _build_and_launch(services: Services, provider: RepoProvider, repo_key: str, image: str,
                            commit: str, launch_ref: str | None, user: str, client: str = "",
                            home_of: tuple[str | None, ResumeGrant | None] = (None, None)
                            ) -> AsyncIterator[Event]:
    if launch_ref is not None:
        yield Event(phase="built", message="Found built image, launching...\n", imageName=image)
    else:
        pushed: list[str] = []
        async for event in build_image(services, provider, repo_key, image, commit, client=client,
                                  pushed=pushed):
            yield event
        launch_ref = pushed[0]
    await _mark_used(services, image, launch_ref)
    notice = asyncio.ensure_future(image_notice(services, image))  # read while the server starts
    try:
        if services.prepuller is not None:  # pull progress instead of a silent spawn
            async for event in services.prepuller.pull(launch_ref):
                yield event
        # Counted as BinderHub counts launches: only this stage (after any build), once each.
        home = await _launch_home(services, provider, repo_key, home_of)
        mount = await services.homes.start_options(home.home, launch_ref) \
            if home.home is not None and services.homes is not None else {}
        services.metrics.inprogress_launches.inc()
        delivered = False
        try:
            async for event in services.launcher.launch(
                    launch_ref, repo_key, user, options={
                        **binder_options(services.settings, provider), **mount}):
                if event.phase == "ready":
                    _count_launch(services, "success", provider)
                    event = _ready(services, provider, image, event, await notice)
                    if home.ready_fields:  # an anonymous launch's resume link
                        event = Event(**event.data(), **home.ready_fields)
                    if mount and services.homes is not None:
                        await services.homes.merged(home.home, launch_ref)
                    delivered = True
                yield event
        except (LaunchError, HubError):
            _count_launch(services, "failure", provider)
            raise
        finally:
            services.metrics.inprogress_launches.dec()
            if home.issued_key and not delivered and services.homes is not None:
                await asyncio.shield(services.homes.forget_unused(home.issued_key))
    finally:
        if not notice.done():
            notice.cancel()
            await asyncio.gather(notice, return_exceptions=True)


async def _redeem(services: Services, spec: str) -> ResumeGrant:
    """What a resume link's stream (`<key>[/<ref>]`) launches; LaunchError (4xx) when it cannot."""
    if services.homes is None:
        raise LaunchError("This service keeps no homes, so it has no resume links.", 404)
    key, _, ref = spec.partition("/")
    grant = await services.homes.redeem(key, unquote(ref) or None)
    refused = services.rules.refusal(grant.provider, grant.spec) if services.rules else None
    if refused is not None:  # the operator's rules judge the repository, whatever the link
        raise LaunchError(refused, 403)
    return grant


async def _launch_home(services: Services, provider: RepoProvider, repo_key: str,
                       home_of: tuple[str | None, ResumeGrant | None]) -> LaunchHome:
    if provider.name == "local" or provider.prebuilt_image is not None:
        return LaunchHome()  # a folder (the CLI's) or someone else's image: no home of theirs
    person, grant = home_of
    home = await launch_home(
        services.homes, services.settings.service.web_url, provider.name, provider.spec,
        getattr(provider, "unresolved_ref", "") or "", provider.persistent_spec(), repo_key,
        person, grant, services.settings.launches.home_resume)
    if home.home is not None:  # the volume's name, never the link's secret
        log.info("home %s (%s)", home.home.volume, "a person's" if person else
                 "resumed" if grant else "new, with a resume link", extra={"home": home.home.volume})
    return home


async def _mark_used(services: Services, *names: str) -> None:
    """The image (its tag, and the digest reference launched) is used now."""
    if services.image_used is None:
        return
    try:
        for name in dict.fromkeys(names):
            await services.image_used(name)
    except Exception as exc:  # a store hiccup costs this image its place in the order, not a launch
        log.warning("could not record the use of %s: %s: %s", ", ".join(names), type(exc).__name__, exc)


async def image_notice(services: Services, image: str) -> list[str]:
    """What the image's build changed from what its repository asks for (its notice label, put
    there by the mirror buildpacks; bindery/builds/buildpacks/build_notice.py). Only images this
    service built have one: a pre-built image from elsewhere is not asked about."""
    if not image.startswith(services.settings.registry.host + "/"):
        return []
    return read_label((await services.registry.image_labels(image)).get(NOTICE_LABEL))


def binder_options(settings: Settings, provider: RepoProvider) -> dict[str, str]:
    """What BinderHub says about a launch's request, with its names: the start request's options
    (the hub's spawner makes them the server's BINDER_* variables) and part of the `ready` event."""
    return {"repo_url": provider.repo_url, "binder_ref_url": provider.ref_url(),
            "binder_launch_host": settings.service.web_url,
            "binder_request": f"v2/{provider.name}/{provider.spec}",
            "binder_persistent_request": f"v2/{provider.name}/{provider.persistent_spec()}"}


def _ready(services: Services, provider: RepoProvider, image: str, event: Event,
           notice: list[str]) -> Event:
    """A launch's `ready` event with what BinderHub's carries about the request, and the notice
    of what its environment changed from what the repository asks for (when anything)."""
    extra = {"notice": notice} if notice else {}
    return Event(**event.data(), **extra, image=image, **binder_options(services.settings, provider))


async def _for_person(services: Services, provider: RepoProvider, person: str | None) -> None:
    """A signed-in person's request reaches their private repositories with their own token
    (when their authenticator holds one for that host), and its resolution is theirs alone."""
    if not person or person_prefix(services.settings, provider.repo_url) is None:
        return  # a host without people's tokens: resolutions stay shared by everyone
    provider.credential_owner = person
    provider.person_credential = await people.git_credential(
        services.settings, services.hub, person, provider.repo_url)


async def _resolve(services: Services, provider: RepoProvider) -> str:
    return await (services.refs.resolve(provider) if services.refs else provider.resolve())


DEFAULT_BRANCHES = ("master", "main")
GIT_REF_PROVIDERS = ("gh", "gl", "git", "gist")


def head_fallback(settings: Settings, provider: RepoProvider,
                  error: LaunchError) -> RepoProvider | None:
    """Old links to a default branch that is gone (master renamed to main, or the other way)
    launch HEAD instead, as BinderHub keeps them working: the same request with HEAD as its ref,
    or None when this is not such a case."""
    if (error.status_code != 404 or provider.name not in GIT_REF_PROVIDERS
            or provider.unresolved_ref not in DEFAULT_BRANCHES
            or not provider.spec.endswith("/" + provider.unresolved_ref)):
        return None
    head = provider.spec[:-len(provider.unresolved_ref)] + "HEAD"
    return get_provider(settings, provider.name, head)


async def prepare_image(services: Services, provider_name: str, spec: str) -> str:
    """Resolve, build if needed and pull onto the run side, without launching: a warm pool's
    image (the refiller's way to follow new commits). Raises LaunchError when it cannot."""
    provider = get_provider(services.settings, provider_name, spec)
    commit = await (services.refs.resolve(provider) if services.refs else provider.resolve())
    repo_key, slug = repo_identity(services.settings, provider)
    image = provider.prebuilt_image or image_name(
        services.settings.registry.host, services.settings.registry.image_prefix, slug, repo_key, commit)
    launch_ref = image if provider.prebuilt_image else await services.launchable(image)
    if launch_ref is None:
        pushed: list[str] = []
        async for _event in build_image(services, provider, repo_key, image, commit, pushed=pushed):
            pass  # a failed build raises LaunchError
        launch_ref = pushed[0]
    await _mark_used(services, image, launch_ref)
    if services.prepuller is not None:
        async for _event in services.prepuller.pull(launch_ref):
            pass
    return launch_ref


async def _build_only(services: Services, provider: RepoProvider, repo_key: str, image: str,
                      commit: str, launch_ref: str | None, client: str = "") -> AsyncIterator[Event]:
    """Build and push without launching; ends as BinderHub's api-only mode does."""
    if launch_ref is not None:
        yield Event(phase="built", message="Found built image.\n", imageName=image)
    else:
        async for event in build_image(services, provider, repo_key, image, commit, build_only=True,
                                  client=client):
            yield event
    notice = await image_notice(services, image)
    yield Event(phase="ready", message=f"Done! {image} is in the registry; not launching, as "
                "requested.\n", imageName=image, image=image, repo_url=provider.repo_url,
                **({"notice": notice} if notice else {}),
                binder_ref_url=provider.ref_url(),
                binder_persistent_request=f"v2/{provider.name}/{provider.persistent_spec()}")


async def _hub_snapshot(services: Services) -> HubSnapshot:
    """The hub's active users, retried like a launch while the hub is unavailable, then a clear
    failure."""
    retries = max(1, services.settings.launches.launch_retries)
    for attempt in range(1, retries + 1):
        try:
            return await hub_snapshot(services.hub)
        except HubUnavailable as exc:
            if attempt >= retries:
                raise LaunchError(f"JupyterHub is not answering ({exc}) after {attempt} attempts; "
                                  "nothing was launched. Please try again shortly.", 503) from exc
            await asyncio.sleep(hub_backoff(attempt))
