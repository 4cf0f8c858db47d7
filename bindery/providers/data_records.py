"""Data repositories (DOI records) as Binder repositories: zenodo, figshare, dataverse, hydroshare, ckan.

A record provider resolves its spec to a version through the service's public JSON API (the version
names the image), then, only when that image must be built, downloads the version's files into a
folder of their own under ``<data_dir>/cache/records`` that repo2docker builds as it is.

Why bindery downloads instead of repo2docker's own content providers: repo2docker 2024.7's
Zenodo/Figshare/Dataverse/HydroShare/CKAN providers first resolve the DOI through doi.org and match
the result against host lists built into their code (not traitlets), so they cannot be pointed at a
configured base URL (an institution's Dataverse or CKAN, or a test server) through repo2docker
config. Downloads are bounded (``doi_max_bytes``, ``doi_max_files``, the members of a zip
included), use only file links on the service's own origin or ``doi_download_origins``, and never
write outside the folder. Redirects are followed one checked hop at a time (at most
:data:`MAX_HOPS`), API requests' and downloads' alike: every hop must pass the same origin rule, and
a hop off the service's own origin (which the operator configured) must also pass the outbound
policy, its connection pinned to the address checked. So a record cannot steer bindery, through a
redirect on an allowed origin, to the registry, the hub or anything else on the operator's network.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import time
import zipfile
from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import httpx

from bindery.events import Event, LaunchError
from bindery.providers.redirects import pinned_request
from bindery.providers.base import RepoProvider
from bindery.providers.httpapi import ApiAnswer, ApiUnavailable
from bindery.providers.tools import ResolveTools
from bindery.settings import Settings

_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_HOPS = 5  # redirects followed for one API request or download
REDIRECTS = (301, 302, 303, 307, 308)
NAME_MAX, PATH_MAX = 255, 4096  # bytes of one file name, and of a whole path (Linux)


@dataclass(frozen=True)
class RecordFile:
    path: str  # relative path inside the record
    url: str
    size: int | None = None


class RecordProvider(RepoProvider):
    repo_parts: ClassVar[int | None] = None
    repo_label = "DOI or record"

    def __init__(self, settings: Settings, spec: str) -> None:  # noqa: D107 - no git URL
        self.settings = settings
        self.spec = spec.strip("/")
        if not self.spec or len(self.spec) > 500:
            raise LaunchError(f"A {self.label} spec looks like {self.spec_example!r}.", 400)
        self.record_id = self.parse_record(self.spec)
        self.repo_url = self.record_url()
        self.unresolved_ref = "latest"
        self.commit: str | None = None
        self.version = ""

    def parse(self, spec: str) -> tuple[str, str]:
        return self.record_url(), "latest"

    # -- what each service defines ----------------------------------------------------------------
    @abstractmethod
    def parse_record(self, spec: str) -> str:
        """The record's id in the service, from the spec; LaunchError(400) if it is not one."""

    @abstractmethod
    def base_url(self) -> str:
        """The configured base URL of the service."""

    @abstractmethod
    def record_url(self) -> str:
        """Where a person sees the record."""

    @abstractmethod
    async def lookup(self, tools: ResolveTools) -> tuple[str, list[RecordFile]]:
        """(version, files) of the record's current version, through the service's API."""

    @property
    def slug(self) -> str:
        return f"{self.name}-{self.record_id}"

    def ref_url(self) -> str:
        return self.repo_url

    # -- resolution ---------------------------------------------------------------------------------
    async def check_outbound(self) -> None:
        """Nothing to check: this provider connects only where the operator configured it to."""

    async def resolve(self) -> str:
        tools = self.tools or ResolveTools.create(self.settings)
        try:
            version, _ = await self.lookup(tools)
        finally:
            if self.tools is None:
                await tools.aclose()
        self.version = version
        self.commit = (_TAG_UNSAFE.sub("-", version).lstrip(".-") or "0")[:128]
        return self.commit

    async def api_json(self, tools: ResolveTools, url: str,
                       params: dict[str, str] | None = None) -> Any:
        """The JSON body of a 200 answer; LaunchError with the service's name otherwise."""
        self.check_origin(url)
        try:
            answer: ApiAnswer = await tools.api.get_json(url, params=params, hop=self.hop)
        except ApiUnavailable as exc:
            raise LaunchError(f"{self.label} is not answering ({exc}); please try again later.",
                              503) from None
        if answer.status in (404, 410):
            raise LaunchError(f"{self.label} has no record {self.spec!r} (HTTP {answer.status} "
                              f"from {url}).", 404)
        if answer.status != 200 or answer.body is None:
            raise LaunchError(f"{self.label} answered HTTP {answer.status} for {self.spec!r}.", 502)
        return answer.body

    async def hop(self, url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """Check one URL a request goes to, the first or a redirect's: the origin rule, and, off
        the service's own origin, the outbound policy. Returns the request to make (pinned to
        the address checked), or raises LaunchError."""
        self.check_origin(url)
        if _origin(url) == _origin(self.base_url()):  # the operator configured it: as it is
            return url, {}, {}
        try:
            pin = await self.outbound_policy().check_url(url)
        except LaunchError as exc:
            if exc.status_code != 403:
                raise
            raise LaunchError(f"{self.label} record {self.spec!r} leads to "
                              f"{urlsplit(url).hostname!r}, on a private, local or otherwise "
                              "non-public network, which this service does not connect to; "
                              "nothing was downloaded.", 403) from None
        return pinned_request(url, pin)

    def check_origin(self, url: str) -> None:
        """Refuse links outside the service (a record must not steer bindery anywhere else)."""
        allowed = {_origin(self.base_url())} | {_origin(o) for o in
                                                self.settings.providers.doi_download_origins}
        if _origin(url) not in allowed:
            raise LaunchError(f"{self.label} record {self.spec!r} links (or redirects) to "
                              f"{_origin(url)!r}, which is not this service's address; nothing "
                              "is downloaded from there.", 422)

    # -- content ------------------------------------------------------------------------------------
    def content_folder(self, image: str) -> Path:
        root = self.settings.data_cache_dir / "records"
        stale_after = self.settings.builds.build_timeout + 600  # left behind by an abandoned launch
        if root.is_dir():
            for old in root.iterdir():
                if time.time() - old.stat().st_mtime > stale_after:
                    shutil.rmtree(old, ignore_errors=True)
        unique = hashlib.sha256(f"{image}{time.time_ns()}".encode()).hexdigest()[:24]
        return root / unique

    def remove_content(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    async def download(self, folder: Path) -> AsyncIterator[Event]:
        """Download the resolved version's files into `folder` (created), with progress events."""
        tools = self.tools or ResolveTools.create(self.settings)
        try:
            _, files = await self.lookup(tools)
            if len(files) > self.settings.providers.doi_max_files:
                raise LaunchError(f"{self.label} record {self.spec!r} has {len(files)} files; this "
                                  f"service downloads at most {self.settings.providers.doi_max_files}.", 413)
            folder.mkdir(parents=True)
            total = 0
            for index, item in enumerate(files, 1):
                target = _inside(folder, item.path)
                self.check_origin(item.url)
                yield Event(phase="fetching", message=f"Downloading {item.path} "
                            f"({index}/{len(files)}) from {self.label}\n")
                total += await _fetch(tools.api.client, item.url, target,
                                      self.settings.providers.doi_max_bytes - total, self.hop)
            if len(files) == 1 and files[0].path.lower().endswith(".zip"):
                yield Event(phase="fetching", message=f"Unpacking {files[0].path}\n")
                _unpack(folder / files[0].path, folder, self.settings.providers.doi_max_bytes,
                        self.settings.providers.doi_max_files)
        except BaseException:
            self.remove_content(folder)
            raise
        finally:
            if self.tools is None:
                await tools.aclose()
        yield Event(phase="fetching", message=f"Fetched {len(files)} files ({total} bytes) of "
                    f"{self.label} record {self.spec} version {self.version}\n")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _inside(folder: Path, relative: str) -> Path:
    """`folder/relative`, refusing absolute paths, '..' and paths too long to be written (a
    record names its own files)."""
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or not pure.parts or any(p in ("..", "", ".") for p in pure.parts):
        raise LaunchError(f"The record has a file named {relative[:100]!r}, which is not a plain "
                          "relative path; nothing was built.", 422)
    target = folder.joinpath(*pure.parts)
    longest = max(len(p.encode("utf-8", "surrogateescape")) for p in pure.parts)
    if longest > NAME_MAX or len(str(target).encode("utf-8", "surrogateescape")) > PATH_MAX - 200:
        # (200: room for repo2docker's own folders around it in the build)
        raise LaunchError(f"The record has a file named {relative[:100]!r}... whose path is too "
                          f"long to be written ({len(relative.encode())} bytes; a name may have "
                          f"at most {NAME_MAX} bytes and a path about {PATH_MAX - 200}); nothing "
                          "was built.", 422)
    return target


@contextlib.asynccontextmanager
async def _checked_stream(client: httpx.AsyncClient, url: str,
                          hop: Callable[[str], Awaitable[tuple[str, dict[str, str], dict[str, Any]]]]
                          ) -> AsyncIterator[httpx.Response]:
    """GET `url` streamed, following redirects one checked (and pinned) hop at a time."""
    for _ in range(MAX_HOPS + 1):
        target, headers, extensions = await hop(url)
        async with client.stream("GET", target, headers=headers, extensions=extensions,
                                 follow_redirects=False) as response:
            location = response.headers.get("location")
            if response.status_code not in REDIRECTS or not location:
                yield response
                return
        url = urljoin(url, location)
    raise LaunchError(f"A file of the record redirects more than {MAX_HOPS} times; nothing was "
                      "built.", 502)


async def _fetch(client: httpx.AsyncClient, url: str, target: Path, budget: int,
                 hop: Callable[[str], Awaitable[tuple[str, dict[str, str], dict[str, Any]]]]
                 ) -> int:
    """Stream `url` into `target`; at most `budget` bytes. Returns the bytes written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        async with _checked_stream(client, url, hop) as response:
            if response.status_code != 200:
                raise LaunchError(f"Downloading {target.name} failed: HTTP {response.status_code} "
                                  f"from {_origin(str(response.url))}.", 502)
            with target.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    written += len(chunk)
                    if written > budget:
                        raise LaunchError("The record's files are larger than this service's "
                                          "download limit; nothing was built.", 413)
                    out.write(chunk)
    except httpx.HTTPError as exc:
        raise LaunchError(f"Downloading {target.name} failed ({type(exc).__name__}); please try "
                          "again later.", 503) from None
    return written


def _unpack(archive: Path, folder: Path, budget: int, max_files: int) -> None:
    """A record holding one zip is that zip's content (as repo2docker does); one top folder is
    flattened. Its members count as the record's files (`max_files`)."""
    with zipfile.ZipFile(archive) as bundle:
        members = [m for m in bundle.infolist() if not m.is_dir()]
        if len(members) > max_files:
            raise LaunchError(f"The record's archive holds {len(members)} files; this service "
                              f"unpacks at most {max_files}; nothing was built.", 413)
        if sum(m.file_size for m in members) > budget:
            raise LaunchError("The record's archive unpacks to more than this service's download "
                              "limit; nothing was built.", 413)
        unpacked = folder / ".unpacked"
        for member in members:
            target = _inside(unpacked, member.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(member) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
    archive.unlink()
    top = list(unpacked.iterdir()) if unpacked.exists() else []
    root = top[0] if len(top) == 1 and top[0].is_dir() else unpacked
    for item in list(root.iterdir()):
        item.rename(folder / item.name)
    shutil.rmtree(unpacked, ignore_errors=True)
