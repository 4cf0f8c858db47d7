"""A build waits while the registry's garbage collector runs (the registry is read-only then, so
its push would be refused): a `waiting` event says so, and the wait is bounded by the collection's
own bound (registry_gc_timeout), after which the launch fails saying why. Launches of built images
never wait: pulls go on during a collection.

Before it looks, a build announces itself (bindery/state/registry_collection.py says why that order
makes the handshake safe across processes)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from bindery.backoff import WaitTimeout, wait_until_async
from bindery.events import Event, LaunchError
from bindery.launches.services import Services
from bindery.state import registry_collection

MARGIN = 60.0  # seconds beyond the collector's bound: the registry's two restarts


async def announce_build(services: Services, image: str) -> bool:
    """Say that a build of ``image`` is about to start; False when there is no store to say it in.
    Its time-to-live is the build's own bound, waits included."""
    if services.store is None:
        return False
    settings = services.settings
    bound = settings.builds.build_timeout + settings.registry.registry_gc_timeout + 2 * MARGIN
    await registry_collection.announce_build(services.store, image, bound)
    return True


async def retire_build(services: Services, image: str) -> None:
    if services.store is not None:
        with contextlib.suppress(Exception):  # a store hiccup: the time-to-live ends it
            await registry_collection.retire_build(services.store, image)


async def collection_over(services: Services, image: str | None = None) -> AsyncIterator[Event]:
    """Return once no collection runs; ``image``'s announcement (made before) is withdrawn while
    it waits, so the collection's drain does not wait for a build that waits for it, and made
    again before it looks once more."""
    if services.store is None:
        return
    settings = services.settings
    bound = settings.registry.registry_gc_timeout + registry_collection.DRAIN + MARGIN
    told = False
    while (record := await registry_collection.current(services.store)) is not None:
        if image is not None:
            await retire_build(services, image)
        if not told:
            told = True
            yield Event(phase="waiting", message=(
                "The image registry is reclaiming space (read-only, for "
                f"{max(0.0, time.time() - float(record.get('since', time.time()))):.0f} s so far); "
                f"this build starts when it is done (at most {bound:.0f} s).\n"))
        try:
            await wait_until_async(lambda: _over(services), timeout=bound, interval=0.5, cap=2.0,
                                   what="the registry's garbage collection to end")
        except WaitTimeout:
            raise LaunchError(
                f"The image registry is still reclaiming space after {bound:.0f} s, so nothing can "
                "be built now. Please try again in a few minutes.", 503) from None
        if image is not None:
            await announce_build(services, image)


async def _over(services: Services) -> bool:
    assert services.store is not None
    return await registry_collection.current(services.store) is None
