"""Any git repository by URL: spec ``<url-escaped-url>/<ref>``."""

from __future__ import annotations

from urllib.parse import unquote

from bindery.providers.base import RepoProvider, split_ref


class GitProvider(RepoProvider):
    name = "git"
    label = "Git repository"
    spec_example = "https%3A%2F%2Fexample.org%2Frepo.git/main"
    repo_label = "Repository URL"
    placeholder = "https://example.org/repo.git"
    escape_repo = True

    def parse(self, spec: str) -> tuple[str, str]:
        escaped_url, ref = split_ref(spec, 1, "git", self.spec_example)
        return unquote(escaped_url), unquote(ref)
