"""GitLab projects: spec ``<url-escaped-namespace>/<ref>`` (e.g. ``group%2Fproject/main``)."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from bindery.events import LaunchError
from bindery.providers.base import RepoProvider, split_ref
from bindery.providers.credentials import api_auth_headers
from bindery.providers.github import commit_from_answer
from bindery.providers.httpapi import ApiUnavailable
from bindery.providers.tools import ResolveTools
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
        return settings.providers.gitlab_url.rstrip("/") + "/"

    def parse(self, spec: str) -> tuple[str, str]:
        escaped_namespace, ref = split_ref(spec, 1, "GitLab", self.spec_example)
        namespace = unquote(escaped_namespace).removesuffix(".git")
        if not _NAMESPACE.match(namespace) or any(
            p in (".", "..") or p.startswith("-") for p in namespace.split("/")
        ):
            raise LaunchError(f"{namespace[:80]!r} is not a valid GitLab project path.", 400)
        self._namespace = namespace
        return f"{self.settings.providers.gitlab_url.rstrip('/')}/{namespace}", unquote(ref)

    @property
    def slug(self) -> str:
        return f"gl-{self._namespace}"

    def api_url(self) -> str:
        if self.settings.providers.gitlab_api_url:
            return self.settings.providers.gitlab_api_url.rstrip("/")
        base = self.settings.providers.gitlab_url.rstrip("/")
        return f"{base}/api/v4" if base == "https://gitlab.com" else ""

    async def resolve_by_api(self, tools: ResolveTools) -> str | None:
        """GET /projects/{url-escaped path}/repository/commits/{ref} (GitLab REST API v4)."""
        api = self.api_url()
        if not api:
            return None
        url = (f"{api}/projects/{quote(self._namespace, safe='')}/repository/commits/"
               f"{quote(self.unresolved_ref, safe='')}")
        try:
            answer = await tools.api.get_json(url, api_auth_headers(self.settings, self.repo_url,
                                                                   self.person_credential))
        except ApiUnavailable:
            return None
        return commit_from_answer(answer.status, answer.body, "id", self.unresolved_ref,
                                  self.repo_url)
