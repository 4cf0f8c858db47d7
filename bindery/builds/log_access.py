"""Who may read a build's log: anyone for a public repository, only its launches for a private one.

A build's log is named from its image (bindery-build-<hash>), and an image name is computable from
the repository URL and the commit, so for a repository the operator holds a credential for
(``git_credentials``) the name alone must not open the log: it may hold what the repository's
code printed, secrets included. Such a build is marked private in the kept-logs folder before it
starts, and its log is served only with its key: an HMAC of the build's name with this service's
secret (``build_log_secret``, or one kept in the data folder). The key travels only in the
launch's own event stream (``build_log_url`` and failure messages carry it), so only the launches
of that build, who hold their session, can open it; it is never logged (bindery/service_log.py redacts it).
"""

from __future__ import annotations

import hashlib
import hmac

from bindery.datadir import StackPaths, secret_file
from bindery.providers.credentials import credential_for, person_prefix
from bindery.settings import Settings

KEY_PARAM = "key"


def is_private(settings: Settings, repo_url: str) -> bool:
    """A repository reached with one of the operator's credentials, or with people's own tokens."""
    return credential_for(settings, repo_url) is not None \
        or person_prefix(settings, repo_url) is not None


def _secret(settings: Settings) -> bytes:
    configured = settings.builds.build_log_secret
    if configured is not None:
        return configured.get_secret_value().encode()
    return secret_file(StackPaths.of(settings).secrets / "build-logs.key").encode()


def log_key(settings: Settings, name: str) -> str:
    return hmac.new(_secret(settings), name.encode(), hashlib.sha256).hexdigest()[:40]


def key_matches(settings: Settings, name: str, key: str | None) -> bool:
    return bool(key) and key.isascii() and hmac.compare_digest(log_key(settings, name), key)
