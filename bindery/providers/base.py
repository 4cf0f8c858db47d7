"""What a repository provider is.

A provider turns a spec string (the part of a launch URL after the provider name) into a
repository URL and a ref, and resolves that ref to a commit. Subclasses must:

- set ``name`` (the URL prefix, e.g. ``gh``) and ``label`` (for people);
- implement ``parse(spec) -> (repo_url, ref)``, raising ``LaunchError(..., 400)`` on bad input;
- optionally override ``resolve()`` when a faster or richer way than ``git ls-remote`` exists.

``slug`` names the repository in image names, ``persistent_spec`` pins the spec to the commit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from bindery.events import LaunchError
from bindery.git import GitConfig, ls_remote
from bindery.outbound import OutboundPolicy
from bindery.settings import Settings
from bindery.spec import FULL_SHA, validate_ref, validate_repo_url


class RepoProvider(ABC):
    name: ClassVar[str]
    label: ClassVar[str]
    spec_example: ClassVar[str]
    # How the home page's form asks for a repository of this kind:
    repo_label: ClassVar[str] = "Repository"
    placeholder: ClassVar[str] = ""
    escape_repo: ClassVar[bool] = False  # the repository is one url-escaped path segment

    @classmethod
    def web_prefix(cls, settings: Settings) -> str:
        """A pasted web URL starting with this is reduced to the part after it."""
        return ""

    def __init__(self, settings: Settings, spec: str) -> None:
        self.settings = settings
        self.spec = spec
        url, ref = self.parse(spec)
        self.repo_url = validate_repo_url(url, settings.git_allowed_schemes)
        self.unresolved_ref = validate_ref(ref)
        self.commit: str | None = None
        self.git_config: GitConfig = ()  # the checked address git must use (set by resolve)

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
        if FULL_SHA.match(ref):
            self.commit = ref
            return ref
        refs = await ls_remote(self.repo_url, ref, timeout=self.settings.git_timeout,
                               config=self.git_config)
        for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", ref):
            if candidate in refs:
                self.commit = refs[candidate]
                return self.commit
        raise LaunchError(f"Could not find ref {ref!r} in {self.repo_url}.", 404)

    async def check_outbound(self) -> None:
        """Refuse a repository on a non-public network; pin git to the address checked."""
        policy = OutboundPolicy(self.settings.repo_allowed_networks, self.settings.git_timeout)
        self.git_config = (await policy.check_url(self.repo_url)).git_config()

    def ref_url(self) -> str:
        """A URL where a person can see the repository at the resolved commit."""
        return self.repo_url

    def persistent_spec(self) -> str:
        """The spec with the ref replaced by the resolved commit."""
        assert self.commit is not None
        head, _, _ = self.spec.rpartition(self.unresolved_ref)
        return f"{head}{self.commit}"


def split_ref(spec: str, parts_before_ref: int, what: str, example: str) -> list[str]:
    """Split `a/b/.../ref` into `parts_before_ref` names plus the ref (which may contain '/')."""
    pieces = spec.split("/", parts_before_ref)
    if len(pieces) != parts_before_ref + 1 or not all(pieces):
        raise LaunchError(f"A {what} spec looks like {example!r}; got {spec[:100]!r}.", 400)
    return pieces
