"""GitHub repositories and gists, on github.com or any server speaking the same git protocol."""

from __future__ import annotations

import re

from bindery.events import LaunchError
from bindery.providers.base import RepoProvider, split_ref
from bindery.providers.credentials import api_auth_headers
from bindery.providers.httpapi import ApiUnavailable
from bindery.providers.tools import ResolveTools
from bindery.settings import Settings
from bindery.spec import FULL_SHA

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
    repo_parts = 2

    @classmethod
    def web_prefix(cls, settings: Settings) -> str:
        return settings.providers.github_url.rstrip("/") + "/"

    def parse(self, spec: str) -> tuple[str, str]:
        org, repo, ref = split_ref(spec, 2, "GitHub", self.spec_example)
        repo = repo.removesuffix(".git")
        _check_names(org, repo)
        self._org_repo = f"{org}/{repo}"
        return f"{self.settings.providers.github_url.rstrip('/')}/{org}/{repo}", ref

    def api_url(self) -> str:
        if self.settings.providers.github_api_url:
            return self.settings.providers.github_api_url.rstrip("/")
        return "https://api.github.com" if self.settings.providers.github_url.rstrip("/") == \
            "https://github.com" else ""

    async def resolve_by_api(self, tools: ResolveTools) -> str | None:
        """GET /repos/{owner}/{repo}/commits/{ref}: branches, tags, full and abbreviated SHAs."""
        api = self.api_url()
        if not api:
            return None
        url = f"{api}/repos/{self._org_repo}/commits/{self.unresolved_ref}"
        try:
            answer = await tools.api.get_json(url, api_auth_headers(self.settings, self.repo_url,
                                                                   self.person_credential))
        except ApiUnavailable:
            return None  # rate-limited or down: the git protocol still works
        return commit_from_answer(answer.status, answer.body, "sha", self.unresolved_ref,
                                  self.repo_url)

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
    repo_parts = 2

    @classmethod
    def web_prefix(cls, settings: Settings) -> str:
        return settings.providers.gist_url.rstrip("/") + "/"

    def parse(self, spec: str) -> tuple[str, str]:
        # `user/id` (no ref) means the gist's HEAD, as BinderHub reads it.
        user, gist_id, ref = split_ref(spec if spec.count("/") > 1 else f"{spec}/HEAD", 2,
                                       "gist", self.spec_example)
        _check_names(user, gist_id)
        self._user_id = (user, gist_id)
        return f"{self.settings.providers.gist_url.rstrip('/')}/{gist_id}", ref

    @property
    def slug(self) -> str:
        user, gist_id = self._user_id
        return f"gist-{user}-{gist_id}"


def commit_from_answer(status: int, body: object, field: str, ref: str, repo_url: str) -> str:
    """The commit in a host API's answer for `ref`, or a LaunchError a person understands."""
    if status == 200 and isinstance(body, dict) and FULL_SHA.match(str(body.get(field, ""))):
        return str(body[field])
    detail = str(body.get("message", "")) if isinstance(body, dict) else ""
    if status in (404, 422):
        # GitHub answers 422 for a prefix matching no commit, and for an ambiguous one.
        hint = f" ({detail[:200]})" if detail else ""
        raise LaunchError(f"Could not find ref {ref!r} in {repo_url}{hint}.", 404)
    raise LaunchError(f"The repository host's API answered HTTP {status} for ref {ref!r} of "
                      f"{repo_url}.", 502)
