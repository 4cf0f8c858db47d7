"""Keep the images launches build on already on the run engine: the base image every repository
builds FROM, and each warm pool's current image.

Without this, the first launch of every new image on a fresh run engine also pulled the base image
(hundreds of MB, tens of seconds), which every repository shares. With it, that launch pulls only
its image's own layers (the engine reuses the base's layers, which it has under the same digests).

When the service starts, and every `warm_images_interval` seconds after, each wanted image missing
from the run engine is pulled through the launches' own prepuller (so a launch that needs the same
image joins that pull instead of starting another, and the pulls share its bounded slots and
timeout). A changed base image (a new bindery version) or a pool following a new commit is pulled on
the next round at the latest. Failures are logged and tried again next round; they never stop the
service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from bindery.events import LaunchError
from bindery.launches.prepull import Prepuller
from bindery.state.pool_records import PoolBook

log = logging.getLogger("bindery.warm_images")


async def wanted_images(base_image: str, pools: PoolBook | None) -> list[str]:
    """The base image, then each pool's current image: kept on the run engine by WarmImages, and
    never removed by a store's cleaner (bindery/storage/keeper.py) whether warm images are on or not."""
    images = [base_image]
    if pools is not None:
        for key in await pools.keys():
            record = await pools.get(key)
            if record and record.get("image"):
                images.append(record["image"])
    return list(dict.fromkeys(images))


class WarmImages:
    def __init__(self, prepuller: Prepuller, base_image: str, pools: PoolBook | None,
                 interval: float) -> None:
        self.prepuller = prepuller
        self.base_image = base_image
        self.pools = pools
        self.interval = interval
        self.last: dict[str, str] = {}  # image -> what the last round found or did
        self.rounds = 0
        self._task: asyncio.Task | None = None

    async def wanted(self) -> list[str]:
        """The base image, then each pool's current image (what image cleaners must keep too)."""
        return await wanted_images(self.base_image, self.pools)

    async def round(self) -> dict[str, str]:
        """Pull every wanted image the run engine does not have; what happened to each."""
        outcome: dict[str, str] = {}
        for image in await self.wanted():
            started = time.monotonic()
            try:
                if await self.prepuller.present(image):
                    outcome[image] = "present"
                    continue
                async for _event in self.prepuller.pull(image):
                    pass
                outcome[image] = "pulled"
                log.info("warm images: pulled %s onto the run engine in %.1f s", image,
                         time.monotonic() - started)
            except LaunchError as exc:
                outcome[image] = f"failed: {exc.message}"
                log.warning("warm images: %s: %s (trying again in %.0f s)", image, exc.message,
                            self.interval)
        self.last = outcome
        self.rounds += 1
        return outcome

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # a store or engine hiccup: log it, try again next round
                log.exception("warm images: round failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
