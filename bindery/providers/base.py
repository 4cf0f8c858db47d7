"""What a repository provider is.

A provider turns a spec string (the part of a launch URL after the provider name) into a
repository URL and a ref, and resolves that ref to a commit. Subclasses must:

- set ``name`` (the URL prefix, e.g. ``gh``) and ``label`` (for people);
- implement ``parse(spec) -> (repo_url, ref)``, raising ``LaunchError(..., 400)`` on bad input;
- optionally override ``resolve()`` when a faster or richer way than ``git ls-remote`` exists.

``slug`` names the repository in image names, ``persistent_spec`` pins the spec to the commit.
``tools`` (set by the pipeline's RefCache before ``resolve()``) holds what resolutions share across
requests: the abbreviated-SHA clone cache and the conditional (ETag) API client.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import ClassVar

from bindery.events import LaunchError, RepositoryRedirected
from bindery.git_commands import GitConfig, ls_remote
from bindery.outbound import OutboundPolicy
from bindery.providers import redirects
from bindery.providers.credentials import Credential, git_auth_config, person_prefix
from bindery.providers.tools import ResolveTools
from bindery.settings import Settings
from bindery.spec import FULL_SHA, validate_ref, validate_repo_url

SHORT_SHA = re.compile(r"^[0-9a-f]{4,39}$")


class RepoProvider(ABC):
    name: ClassVar[str]
    label: ClassVar[str]
    spec_example: ClassVar[str]
    # How the home page's form asks for a repository of this kind:
    repo_label: ClassVar[str] = "Repository"
    placeholder: ClassVar[str] = ""
    escape_repo: ClassVar[bool] = False  # the repository is one url-escaped path segment
    # Path segments of the spec before the ref (`launch --ref` replaces or appends the ref);
    # None: the spec has no ref (DOI records, images).
    repo_parts: ClassVar[int | None] = 1
    # An image reference to launch as it is (pre-built images); None: build from the repository.
    prebuilt_image: str | None = None
    tools: ResolveTools | None = None
    # Defaults for providers whose __init__ is their own (records, images, folders).
    git_config: GitConfig = ()
    # A signed-in person's own token for this repository (bindery/launches/people.py) and whose it
    # is; set before resolution. Resolutions made with it are theirs alone (refcache.py).
    person_credential: Credential | None = None
    credential_owner: str = ""
    _outbound_checked: bool = False
    located: bool = False
    moved_to: str | None = None

    @classmethod
    def web_prefix(cls, settings: Settings) -> str:
        """A pasted web URL starting with this is reduced to the part after it."""
        return ""

    def __init__(self, settings: Settings, spec: str) -> None:
        self.settings = settings
        self.spec = spec
        url, ref = self.parse(spec)
        self.repo_url = validate_repo_url(url, settings.providers.git_allowed_schemes)
        self.unresolved_ref = validate_ref(ref)
        self.commit: str | None = None
        # The checked address git must use, and the operator's credential for this repository if
        # any (set by check_outbound, before any connection); where it moved to (set by locate).
        self.git_config: GitConfig = ()
        self._outbound_checked = False
        self.located = False  # git reached the repository at repo_url, or locate() followed it
        self.moved_to: str | None = None

    @abstractmethod
    def parse(self, spec: str) -> tuple[str, str]:
        """Split the spec into (repository URL, ref)."""

    @property
    def slug(self) -> str:
        """A readable name of the repository for image names (escaped later)."""
        return f"{self.name}-{self.repo_url.split('://', 1)[-1].removesuffix('.git')}"

    async def resolve(self) -> str:
        """Resolve the ref to a full commit hash."""
        await self.check_outbound()  # before any connection, for every kind of ref
        ref = self.unresolved_ref
        # A full commit needs no resolution, unless people reach this host with their own token:
        # then git must answer with theirs, or anyone knowing a commit could launch its image.
        if FULL_SHA.match(ref) and person_prefix(self.settings, self.repo_url) is None:
            self.commit = ref
            return ref
        tools = self.tools or ResolveTools.create(self.settings)
        try:
            return await self._resolve_with(tools)
        finally:
            if self.tools is None:  # made for this call only
                await tools.aclose()

    async def _resolve_with(self, tools: ResolveTools) -> str:
        ref = self.unresolved_ref
        by_api = await self.resolve_by_api(tools)
        if by_api is not None:
            self.commit = by_api
            return by_api
        try:
            refs = await ls_remote(self.repo_url, ref, timeout=self.settings.providers.git_timeout,
                                   config=self.git_config)
        except RepositoryRedirected:
            await self.locate()
            if self.moved_to is None:  # the redirect was git's alone: keep git's answer
                raise
            refs = await ls_remote(self.repo_url, ref, timeout=self.settings.providers.git_timeout,
                                   config=self.git_config)
        self.located = True
        for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", ref):
            if candidate in refs:
                self.commit = refs[candidate]
                return self.commit
        if FULL_SHA.match(ref):  # a person-token repository: git answering proved their access
            self.commit = ref
            return ref
        if SHORT_SHA.match(ref):  # an abbreviated commit, as people copy it from a web page
            self.commit = await tools.shas.find(self.repo_url, ref, self.git_config)
            return self.commit
        raise LaunchError(f"Could not find ref {ref!r} in {self.repo_url}.", 404)

    def outbound_policy(self) -> OutboundPolicy:
        return OutboundPolicy(self.settings.providers.repo_allowed_networks, self.settings.providers.git_timeout)

    async def check_outbound(self) -> None:
        """Refuse a repository on a non-public network; pin git to the address checked (once).

        Providers that only talk to services the operator configured (DOI records, images) override
        this: the operator chose those addresses, not the person asking."""
        if self._outbound_checked:
            return
        pins = (await self.outbound_policy().check_url(self.repo_url)).git_config()
        self.git_config = (*pins, *git_auth_config(self.settings, self.repo_url,
                                                   self.person_credential))
        self._outbound_checked = True

    async def locate(self) -> None:
        """Follow the repository's redirects (checked hop by hop, bindery/providers/redirects.py)
        so that git, the build's clone included, fetches from where it lives now. Once per
        provider; a no-op when git already reached it at repo_url."""
        if self.located:
            return
        await self.check_outbound()
        moved = await redirects.locate(self.repo_url, self.outbound_policy(),
                                       self.settings.providers.git_timeout, self.settings.providers.git_allowed_schemes)
        if moved is not None:
            self.moved_to = moved.url
            self.git_config = (*self.git_config, *moved.git_config)
        self.located = True

    async def resolve_by_api(self, tools: ResolveTools) -> str | None:
        """The commit through the host's web API, or None to use the git protocol instead."""
        return None

    def ref_url(self) -> str:
        """A URL where a person can see the repository at the resolved commit."""
        return self.repo_url

    def persistent_spec(self) -> str:
        """The spec with the ref replaced by the resolved commit."""
        assert self.commit is not None
        if self.repo_parts is None:
            return self.spec
        # The ref is the spec's last segments (it may contain escaped or plain '/').
        head = "/".join(self.spec.split("/", self.repo_parts)[:self.repo_parts])
        return f"{head}/{self.commit}"


def split_ref(spec: str, parts_before_ref: int, what: str, example: str) -> list[str]:
    """Split `a/b/.../ref` into `parts_before_ref` names plus the ref (which may contain '/')."""
    pieces = spec.split("/", parts_before_ref)
    if len(pieces) != parts_before_ref + 1 or not all(pieces):
        raise LaunchError(f"A {what} spec looks like {example!r}; got {spec[:100]!r}.", 400)
    return pieces
