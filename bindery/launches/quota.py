"""Quotas on running servers: the hub's own user list (which survives a restart of bindery) united
with the launches in flight (bindery/launches/reservations.py).

A launch reserves its place once (see bindery/launches/pipeline.py), before a build starts (so a repository
at its limit does not spend a build slot), and holds it until its server is gone.
"""

from __future__ import annotations

from bindery.launches.hub_api import Hub
from bindery.launches.hub_users import PREFIX, repo_key
from bindery.launches.reservations import HubSnapshot, Limits


async def hub_snapshot(hub: Hub) -> HubSnapshot:
    """The hub's active bindery users, stamped with the moment before the hub was asked (wall
    clock: compared with delivery times of other processes). Concurrent callers share one
    listing, each with that listing's own stamp."""
    taken_at, users = await hub.active_users()
    return HubSnapshot.of(users, taken_at)


def limits_for(repo_url: str, max_total: int, max_per_repo: int) -> Limits:
    return Limits(total=max_total, per_repo=max_per_repo,
                  repo_prefix=f"{PREFIX}{repo_key(repo_url)}-")
