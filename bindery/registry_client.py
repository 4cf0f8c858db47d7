"""The registry adapter: does an image exist, and what labels does it carry? (OCI distribution API
over HTTP).

An unreachable or erroring registry is never read as "not built": that would turn a registry
outage into a rebuild storm. Such errors are retried within a bound and then fail the launch.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

import httpx

from bindery import http_clients
from bindery.backoff import Backoff
from bindery.events import LaunchError
from bindery.image_names import split_image

# Both manifest kinds (and their list/index forms): with only the Docker type in Accept, an
# OCI-pushed image answers 404.
MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
))


def manifest_url(base_url: str, image: str) -> str:
    """Where the registry at ``base_url`` says whether ``image`` (``host/repo:tag``) exists: a HEAD there, with
    ``MANIFEST_HEADERS``, answers 200 (it does) or 404 (it does not). The one existence check, sync or async."""
    _, repo, tag = split_image(image)
    if not repo or "/" in tag:  # no tag given: host/repo
        repo, tag = image.partition("/")[2], "latest"
    return f"{base_url.rstrip('/')}/v2/{repo}/manifests/{tag}"


MANIFEST_HEADERS = {"Accept": MANIFEST_TYPES}
LABELS_CACHED = 512  # images whose labels are remembered (a tag is one build of one commit)
log = logging.getLogger("bindery.registry")

# pauses between tries of a registry that did not answer: 0.5, 1, 2, 2... seconds (``retries`` bounds the tries)
RETRY_BACKOFF = Backoff(first=0.5, factor=2.0, cap=2.0)


class Registry:
    def __init__(self, base_url: str, timeout: float, retries: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = max(1, retries)
        self.client = http_clients.async_client(timeout=timeout)
        self._labels: OrderedDict[str, dict[str, str]] = OrderedDict()

    async def image_exists(self, image: str) -> bool:
        url = manifest_url(self.base_url, image)
        problem = ""
        for attempt in range(self.retries):
            if attempt:
                await asyncio.sleep(RETRY_BACKOFF.delay(attempt))
            try:
                response = await self.client.head(url, headers=MANIFEST_HEADERS)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if response.status_code == 200:
                return True
            if response.status_code == 404:
                return False
            problem = f"HTTP {response.status_code}"
        raise LaunchError(
            f"The image registry at {self.base_url} is not answering ({problem}) after "
            f"{self.retries} attempts; not rebuilding. Please try again shortly.",
            503,
        )

    async def image_labels(self, image: str) -> dict[str, str]:
        """The labels of `image`'s config ({} when it has none or the registry cannot say: a
        label is never worth failing a launch for; the reason is logged)."""
        if image in self._labels:
            self._labels.move_to_end(image)
            return self._labels[image]
        url = manifest_url(self.base_url, image)
        try:
            manifest = (await self._get(url, MANIFEST_HEADERS)).json()
            if "manifests" in manifest:  # an index: the first platform's manifest
                digest = manifest["manifests"][0]["digest"]
                manifest = (await self._get(url.rsplit("/", 1)[0] + f"/{digest}",
                                            MANIFEST_HEADERS)).json()
            blob = url.rsplit("/manifests/", 1)[0] + f"/blobs/{manifest['config']['digest']}"
            config = (await self._get(blob, {})).json()
            labels = (config.get("config") or {}).get("Labels") or {}
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError,
                AttributeError) as exc:
            log.warning("labels of %s not read: %s: %s", image, type(exc).__name__, exc)
            return {}
        labels = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
        self._labels[image] = labels
        if len(self._labels) > LABELS_CACHED:
            self._labels.popitem(last=False)
        return labels

    async def _get(self, url: str, headers: dict[str, str]) -> httpx.Response:
        response = await self.client.get(url, headers=headers, follow_redirects=True)
        response.raise_for_status()
        return response

    async def ping(self) -> None:
        """Raise unless the registry answers its API base (used by /health)."""
        response = await self.client.get(f"{self.base_url}/v2/")
        if response.status_code not in (200, 401):
            raise RuntimeError(f"registry answered HTTP {response.status_code}")

    async def aclose(self) -> None:
        await self.client.aclose()
