"""Names of the temporary hub users bindery creates.

`b-<repo hash>-<random>`: the repository hash lets quotas count a repository's servers from the
hub's own user list (which survives a restart of bindery), the random part keeps users apart.
"""

from __future__ import annotations

import hashlib

PREFIX = "b-"


def repo_key(repo_url: str) -> str:
    return hashlib.sha256(repo_url.encode()).hexdigest()[:8]


def user_name(repo_url: str, random_part: str) -> str:
    return f"{PREFIX}{repo_key(repo_url)}-{random_part}"


def is_bindery_user(name: str) -> bool:
    return name.startswith(PREFIX)
