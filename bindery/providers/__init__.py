"""Repository providers, one module per kind; `PROVIDERS` maps URL names to classes."""

from __future__ import annotations

from bindery.events import LaunchError
from bindery.providers.base import RepoProvider
from bindery.providers.doi_services import RECORD_PROVIDERS
from bindery.providers.git_url import GitProvider
from bindery.providers.github import GistProvider, GitHubProvider
from bindery.providers.gitlab import GitLabProvider
from bindery.providers.image import ImageProvider
from bindery.providers.local import LocalProvider
from bindery.settings import Settings

PROVIDERS: dict[str, type[RepoProvider]] = {
    p.name: p for p in (GitHubProvider, GitLabProvider, GitProvider, GistProvider,
                        *RECORD_PROVIDERS, ImageProvider)
}


def get_provider(settings: Settings, name: str, spec: str, allow_local: bool = False) -> RepoProvider:
    """Instantiate the provider for a request, or raise a 404/400 LaunchError."""
    if name == LocalProvider.name and allow_local:
        return LocalProvider(settings, spec)
    cls = PROVIDERS.get(name)
    if cls is None:
        known = ", ".join(sorted(PROVIDERS))
        raise LaunchError(f"Unknown provider {name[:40]!r}; known providers: {known}.", 404)
    return cls(settings, spec)


__all__ = ["PROVIDERS", "RepoProvider", "get_provider"]
