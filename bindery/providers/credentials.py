"""Operator-configured tokens for private repositories, scoped by URL prefix.

A token reaches git only as a config entry ``http.<prefix>.extraHeader`` that bindery/git_commands.py passes
through the environment (``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``, beside the
safety config), so it is never part of a command line,
a repository URL or the clone's ``.git/config`` (which a Dockerfile's ``COPY . .`` would put into an
image layer); and git sends it only to URLs under that prefix.
"""

from __future__ import annotations

import base64

from pydantic import SecretStr

from bindery.git_commands import GitConfig
from bindery.settings import Settings


Credential = tuple[str, SecretStr]  # (URL prefix it is sent to, token)


def person_prefix(settings: Settings, url: str) -> tuple[str, str] | None:
    """(prefix, auth_state key) when repositories at `url` are reached with the signed-in person's
    own token (person_git_credentials), else None."""
    matches = [(p, k) for p, k in settings.signin.person_git_credentials.items()
               if p and url.startswith(p)]
    return max(matches, key=lambda m: len(m[0])) if matches else None


def credential_for(settings: Settings, url: str) -> Credential | None:
    """(prefix, token) of the longest configured prefix that `url` starts with; never the
    operator's for a host whose repositories people reach with their own token."""
    if person_prefix(settings, url) is not None:
        return None
    matches = [(p, t) for p, t in settings.providers.git_credentials.items() if p and url.startswith(p)]
    return max(matches, key=lambda m: len(m[0])) if matches else None


def git_auth_config(settings: Settings, url: str, person: Credential | None = None) -> GitConfig:
    """git config that makes git send the token for `url` (empty when none is configured):
    the signed-in person's own (`person`) if given, else the operator's."""
    found = person or credential_for(settings, url)
    if found is None or not url.startswith(("http://", "https://")):
        return ()
    prefix, token = found
    # Basic with a fixed user name works for GitHub (x-access-token), GitLab and Gitea tokens.
    basic = base64.b64encode(f"x-access-token:{token.get_secret_value()}".encode()).decode()
    return ((f"http.{prefix}.extraHeader", f"Authorization: Basic {basic}"),)


def api_auth_headers(settings: Settings, url: str, person: Credential | None = None
                     ) -> dict[str, str]:
    """Authorization header for a host's web API, from the person's token (`person`) or the one
    configured for repository `url`."""
    found = person or credential_for(settings, url)
    return {"Authorization": f"Bearer {found[1].get_secret_value()}"} if found else {}
