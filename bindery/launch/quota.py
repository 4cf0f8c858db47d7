"""Quotas on running servers, counted from the hub's own user list (not from bindery's memory).

Checked twice per launch (see bindery/pipeline.py): before a build starts (so a repository at its
limit does not spend a build slot) and again right before the server is started.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote

from bindery.events import LaunchError
from bindery.launch.hub import Hub
from bindery.launch.names import PREFIX, is_bindery_user, repo_key


def per_repo_limit(default: int, tiers: Mapping[str, int], provider: str, spec: str,
                   repo_url: str) -> int:
    """The per-repository limit: the highest tier whose pattern matches, else `default`.

    A pattern (re.search) is matched against '<provider>/<spec>' (spec url-decoded, as for
    banned_specs) and against the repository URL.
    """
    target = f"{provider}/{unquote(spec)}"
    limits = [limit for pattern, limit in tiers.items()
              if re.search(pattern, target) or re.search(pattern, repo_url)]
    return max(limits) if limits else default


async def check_quota(hub: Hub, repo_url: str, max_total: int, max_per_repo: int) -> None:
    users = await hub.list_users()
    active = [u for u in users if is_bindery_user(u.get("name", "")) and u.get("servers")]
    if len(active) >= max_total:
        raise LaunchError(
            f"This Binder is running as many servers as it can ({len(active)} of {max_total}). "
            "Please try again in a few minutes.", 429)
    mine = f"{PREFIX}{repo_key(repo_url)}-"
    count = sum(1 for u in active if u["name"].startswith(mine))
    if count >= max_per_repo:
        raise LaunchError(
            f"This repository already has {count} server{'s' if count != 1 else ''} running, "
            f"its limit is {max_per_repo}. "
            "Please try again in a few minutes, when some of them have stopped.", 429)
