"""Quotas on running servers, counted from the hub's own user list (not from bindery's memory)."""

from __future__ import annotations

from bindery.events import LaunchError
from bindery.launch.hub import Hub
from bindery.launch.names import PREFIX, is_bindery_user, repo_key


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
            f"This repository already has {count} servers running, its limit is {max_per_repo}. "
            "Please try again in a few minutes.", 429)
