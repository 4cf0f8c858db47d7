"""GitLab projects: spec ``<url-escaped-namespace>/<ref>`` (e.g. ``group%2Fproject/main``)."""

from __future__ import annotations

import re
from urllib.parse import unquote

from bindery.events import LaunchError
from bindery.providers.base import RepoProvider, split_ref
from bindery.settings import Settings

_NAMESPACE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")


class GitLabProvider(RepoProvider):
    name = "gl"
    label = "GitLab"
    spec_example = "group%2Fproject/main"
    repo_label = "GitLab repository name or URL"
    placeholder = "group/project"
    escape_repo = True

    @classmethod
    def web_prefix(cls, settings: Settings) -> str:
        return settings.gitlab_url.rstrip("/") + "/"

    def parse(self, spec: str) -> tuple[str, str]:
        escaped_namespace, ref = split_ref(spec, 1, "GitLab", self.spec_example)
        namespace = unquote(escaped_namespace).removesuffix(".git")
        if not _NAMESPACE.match(namespace) or any(
            p in (".", "..") or p.startswith("-") for p in namespace.split("/")
        ):
            raise LaunchError(f"{namespace[:80]!r} is not a valid GitLab project path.", 400)
        self._namespace = namespace
        return f"{self.settings.gitlab_url.rstrip('/')}/{namespace}", unquote(ref)

    @property
    def slug(self) -> str:
        return f"gl-{self._namespace}"
