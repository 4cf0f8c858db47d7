"""The registry adapter: does an image exist, under which digest, and what labels does it carry?
(OCI distribution API over HTTP).

An unreachable or erroring registry is never read as "not built": that would turn a registry
outage into a rebuild storm. Such errors are retried within a bound and then fail the launch.

Registries that want a credential are answered as they ask (``WWW-Authenticate``): HTTP basic
auth, or the Docker registry token flow (a bearer token for the scope the registry names, from
its realm, asked with the credential or anonymously), tokens reused until they expire. A
registry that still answers 401 refuses bindery's credential: /health says so.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Generator
from pathlib import Path

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
TOKENS_KEPT = 256  # bearer tokens remembered (one per scope); the oldest go first
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def basic_header(credential: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(":".join(credential).encode()).decode()


class RegistryAuth(httpx.Auth):
    """httpx auth for a registry: basic or bearer (token flow), as its 401 asks. Works for sync
    and async clients (the flow does no I/O of its own: the token request is yielded)."""

    def __init__(self, credential: tuple[str, str] | None = None) -> None:
        self.credential = credential
        self.tokens: dict[str, tuple[str, float]] = {}  # scope -> (token, expiry)
        self.scopes: dict[str, str] = {}  # request path -> the scope its last challenge named

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path = request.url.path
        known = self.tokens.get(self.scopes.get(path, "\0"))
        if known and known[1] > time.monotonic():
            request.headers["Authorization"] = f"Bearer {known[0]}"
        response = yield request
        if response.status_code != 401:
            return
        scheme, _, rest = response.headers.get("www-authenticate", "").partition(" ")
        params = dict(_PARAM.findall(rest))
        if scheme.lower() == "basic" and self.credential is not None:
            request.headers["Authorization"] = basic_header(self.credential)
            yield request
        elif scheme.lower() == "bearer" and params.get("realm"):
            scope = params.get("scope", "")
            query = {k: v for k, v in (("service", params.get("service", "")), ("scope", scope)) if v}
            ask = httpx.Request("GET", params["realm"], params=query)
            if self.credential is not None:
                ask.headers["Authorization"] = basic_header(self.credential)
            answer = yield ask
            if answer.status_code != 200:
                return  # the registry's 401 stands: the credential is refused
            body = answer.json()
            token = body.get("token") or body.get("access_token") or ""
            lifetime = float(body.get("expires_in") or 60)
            if len(self.tokens) >= TOKENS_KEPT:
                self.tokens.pop(next(iter(self.tokens)))
            self.tokens[scope] = (token, time.monotonic() + max(0.0, lifetime - 10))
            if len(self.scopes) >= TOKENS_KEPT:
                self.scopes.pop(next(iter(self.scopes)))
            self.scopes[path] = scope
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    requires_response_body = True  # the token answer is read in the flow (sync or async)


def repository_of(image: str) -> str:
    """``host/repo`` of ``host/repo:tag`` or ``host/repo@sha256:...``."""
    host, repo, _ = split_image(image)
    return f"{host}/{repo}"


def by_digest(image: str, digest: str) -> str:
    """The reference that names exactly ``digest`` of ``image``'s repository: what is launched."""
    return f"{repository_of(image)}@{digest}"


def docker_config(folder: Path, host: str, credential: tuple[str, str] | None) -> Path:
    """``folder/config.json`` (mode 600, folder 700): a docker config with ``credential`` for the
    registry ``host`` (none: no entry), as docker clients, podman and skopeo read it."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    auths = {host: {"auth": basic_header(credential).removeprefix("Basic ")}} if credential else {}
    path = folder / "config.json"
    tmp = folder / "config.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"auths": auths}, f)
    os.replace(tmp, path)
    return path

# pauses between tries of a registry that did not answer: 0.5, 1, 2, 2... seconds (``retries`` bounds the tries)
RETRY_BACKOFF = Backoff(first=0.5, factor=2.0, cap=2.0)


class Registry:
    def __init__(self, base_url: str, timeout: float, retries: int,
                 credential: tuple[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = max(1, retries)
        self.client = http_clients.async_client(timeout=timeout)
        self._labels: OrderedDict[str, dict[str, str]] = OrderedDict()
        self.client.auth = RegistryAuth(credential)

    async def image_exists(self, image: str) -> bool:
        return await self.digest(image) is not None

    async def digest(self, image: str) -> str | None:
        """The digest ``image`` (a tag or a digest reference) names now, or None when absent."""
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
                return response.headers.get("docker-content-digest") or image.partition("@")[2] \
                    or "unknown"
            if response.status_code == 404:
                return None
            problem = f"HTTP {response.status_code}" + (
                " (it refuses bindery's registry credential)" if response.status_code == 401 else "")
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
        """Raise unless the registry answers its API base with bindery's credential (/health)."""
        response = await self.client.get(f"{self.base_url}/v2/")
        if response.status_code == 401:
            raise RuntimeError("registry answered HTTP 401: it refuses bindery's registry "
                               "credential (registry_username / registry_password)")
        if response.status_code != 200:
            raise RuntimeError(f"registry answered HTTP {response.status_code}")

    async def aclose(self) -> None:
        await self.client.aclose()
