"""GitHub repositories and gists, on github.com or any server speaking the same git protocol."""

from __future__ import annotations

import re

from bindery.events import LaunchError
from bindery.providers.base import RepoProvider, split_ref
from bindery.settings import Settings

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _check_names(*names: str) -> None:
    for n in names:
        if not _NAME.match(n) or n in (".", "..") or n.startswith("-"):
            raise LaunchError(f"{n[:60]!r} is not a valid GitHub name.", 400)


class GitHubProvider(RepoProvider):
    name = "gh"
    label = "GitHub"
    spec_example = "org/repo/main"
    repo_label = "GitHub repository name or URL"
    placeholder = "org/repo"

    @classmethod
    def web_prefix(cls, settings: Settings) -> str:
        return settings.github_url.rstrip("/") + "/"

    def parse(self, spec: str) -> tuple[str, str]:
        org, repo, ref = split_ref(spec, 2, "GitHub", self.spec_example)
        repo = repo.removesuffix(".git")
        _check_names(org, repo)
        return f"{self.settings.github_url.rstrip('/')}/{org}/{repo}", ref

    @property
    def slug(self) -> str:
        org, repo, _ = self.spec.split("/", 2)
        return f"gh-{org}-{repo.removesuffix('.git')}"

    def ref_url(self) -> str:
        return f"{self.repo_url}/tree/{self.commit}"


class GistProvider(RepoProvider):
    name = "gist"
    label = "Gist"
    spec_example = "user/0123456789abcdef/HEAD"
    repo_label = "Gist user/id or URL"
    placeholder = "user/0123456789abcdef"

    @classmethod
    def web_prefix(cls, settings: Settings) -> str:
        return settings.gist_url.rstrip("/") + "/"

    def parse(self, spec: str) -> tuple[str, str]:
        if spec.count("/") == 1:
            spec += "/HEAD"
        user, gist_id, ref = split_ref(spec, 2, "gist", self.spec_example)
        _check_names(user, gist_id)
        return f"{self.settings.gist_url.rstrip('/')}/{gist_id}", ref

    @property
    def slug(self) -> str:
        user, gist_id, _ = self.spec.split("/", 2)
        return f"gist-{user}-{gist_id}"
