"""Data repositories (DOI records) as Binder repositories: zenodo, figshare, dataverse, hydroshare, ckan.

A record provider resolves its spec to a version through the service's public JSON API (the version
names the image), then, only when that image must be built, downloads the version's files into a
folder of their own under ``<data_dir>/cache/records`` that repo2docker builds as it is.

Why bindery downloads instead of repo2docker's own content providers: repo2docker 2024.7's
Zenodo/Figshare/Dataverse/HydroShare/CKAN providers first resolve the DOI through doi.org and match
the result against host lists built into their code (not traitlets), so they cannot be pointed at a
configured base URL (an institution's Dataverse or CKAN, or a test server) through repo2docker
config. Downloads are bounded (``doi_max_bytes``, ``doi_max_files``), use only file links on the
service's own origin or ``doi_download_origins``, and never write outside the folder.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
import zipfile
from abc import abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from bindery.events import Event, LaunchError
from bindery.providers.base import RepoProvider
from bindery.providers.httpapi import ApiAnswer, ApiUnavailable
from bindery.providers.tools import ResolveTools
from bindery.settings import Settings

_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


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
            answer: ApiAnswer = await tools.api.get_json(url, params=params)
        except ApiUnavailable as exc:
            raise LaunchError(f"{self.label} is not answering ({exc}); please try again later.",
                              503) from None
        if answer.status in (404, 410):
            raise LaunchError(f"{self.label} has no record {self.spec!r} (HTTP {answer.status} "
                              f"from {url}).", 404)
        if answer.status != 200 or answer.body is None:
            raise LaunchError(f"{self.label} answered HTTP {answer.status} for {self.spec!r}.", 502)
        return answer.body

    def check_origin(self, url: str) -> None:
        """Refuse links outside the service (a record must not steer bindery anywhere else)."""
        allowed = {_origin(self.base_url())} | {_origin(o) for o in
                                                self.settings.providers.doi_download_origins}
        if _origin(url) not in allowed:
            raise LaunchError(f"{self.label} record {self.spec!r} links a file at {_origin(url)!r}, "
                              "which is not this service's address; it is not downloaded.", 422)

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
                                      self.settings.providers.doi_max_bytes - total)
            if len(files) == 1 and files[0].path.lower().endswith(".zip"):
                yield Event(phase="fetching", message=f"Unpacking {files[0].path}\n")
                _unpack(folder / files[0].path, folder, self.settings.providers.doi_max_bytes)
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
    """`folder/relative`, refusing absolute paths and '..' (a record names its own files)."""
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or not pure.parts or any(p in ("..", "", ".") for p in pure.parts):
        raise LaunchError(f"The record has a file named {relative[:100]!r}, which is not a plain "
                          "relative path; nothing was built.", 422)
    return folder.joinpath(*pure.parts)


async def _fetch(client: httpx.AsyncClient, url: str, target: Path, budget: int) -> int:
    """Stream `url` into `target`; at most `budget` bytes. Returns the bytes written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise LaunchError(f"Downloading {target.name} failed: HTTP {response.status_code} "
                                  f"from {_origin(url)}.", 502)
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


def _unpack(archive: Path, folder: Path, budget: int) -> None:
    """A record holding one zip is that zip's content (as repo2docker does); one top folder is
    flattened."""
    with zipfile.ZipFile(archive) as bundle:
        members = [m for m in bundle.infolist() if not m.is_dir()]
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
