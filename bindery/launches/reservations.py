"""The quota reservation book: check-and-take in one step, so a crowd cannot overshoot a quota.

A launch takes a reservation under the username it will use, before building or launching, and
keeps it until its server is gone: released at once when the launch fails or is abandoned; once
`ready`, marked delivered and dropped the first time a hub listing taken *after* the delivery no
longer shows that user's server (culled, stopped). What a quota counts is the union, by username,
of the hub's active bindery users and the reservations, so a server is never counted twice and
a server the hub has not listed yet is never counted zero times.

:class:`ReservationBook` is the interface; :class:`MemoryReservationBook` keeps it in this process;
:class:`StoreReservationBook` keeps it in the state store (bindery/state/), with the check-and-take
as one transaction across every process of the service. Both apply the same rules
(:func:`take_place`). Times are wall-clock (time.time()), comparable across processes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bindery.events import LaunchError
from bindery.launches.hub_users import PREFIX, is_bindery_user
from bindery.state.base import RESERVATIONS, StateStore


@dataclass(frozen=True)
class HubSnapshot:
    """Names of the bindery users with a server, as the hub listed them at `taken_at`."""

    active: frozenset[str]
    taken_at: float = field(default_factory=time.time)  # before the listing was asked for

    @classmethod
    def of(cls, users: Iterable[dict], taken_at: float) -> HubSnapshot:
        """Anonymous launches by their user's name; a signed-in person's launches (named servers
        named like bindery's users) as `person/server`, the name their reservation holds."""
        names: set[str] = set()
        for user in users:
            name = user.get("name", "")
            for server in user.get("servers") or {}:
                if server == "" and is_bindery_user(name):
                    names.add(name)
                elif server and is_bindery_user(server):
                    names.add(f"{name}/{server}")
        return cls(frozenset(names), taken_at)


@dataclass(frozen=True)
class Limits:
    total: int
    per_repo: int
    repo_prefix: str  # usernames of one repository's launches start with this


class ReservationBook:
    """What every reservation book does (see the module docstring)."""

    async def reserve(self, user: str, hub: HubSnapshot, limits: Limits) -> None:
        """Take a reservation for `user`, or raise LaunchError(429) when a quota is full."""
        raise NotImplementedError

    async def delivered(self, user: str) -> None:
        """The launch is `ready`: keep counting it until the hub no longer lists its server."""
        raise NotImplementedError

    async def release(self, user: str) -> None:
        """The launch failed or was abandoned: its reservation ends now."""
        raise NotImplementedError

    async def count(self, hub: HubSnapshot, repo_prefix: str = PREFIX) -> int:
        """Servers counted against the quota (of one repository: its username prefix)."""
        raise NotImplementedError


Held = dict[str, dict[str, float | None]]  # user -> {"taken": time, "delivered": time | None}


def _counted(held: Held, hub: HubSnapshot, max_pending: float = math.inf) -> set[str]:
    """Drop (from `held`) delivered reservations that a listing taken after their delivery no
    longer shows: the server is gone; and undelivered ones older than `max_pending` seconds whose
    user the hub does not list: their launch cannot still be running (its process died). Anything
    else still counts. What the quota counts: the hub's active users and the held ones."""
    def gone(user: str, place: dict[str, float | None]) -> bool:
        if user in hub.active:
            return False
        delivered = place.get("delivered")
        if delivered is not None:
            return delivered < hub.taken_at
        return (place.get("taken") or 0.0) < hub.taken_at - max_pending
    for user in [user for user, place in held.items() if gone(user, place)]:
        del held[user]
    return set(hub.active) | set(held)


def server_name(name: str) -> str:
    """The bindery name of a launch's server (`person/server` → `server`), which names its
    repository."""
    return name.rpartition("/")[2]


class QuotaFull(LaunchError):
    """A quota refused the launch (429); `quota` names it as BinderHub's launch metric does:
    pod_quota (servers in total) or repo_quota (this repository's)."""

    def __init__(self, message: str, quota: str) -> None:
        super().__init__(message, 429)
        self.quota = quota


def take_place(held: Held, user: str, hub: HubSnapshot, limits: Limits,
               max_pending: float = math.inf) -> None:
    """Add `user` to `held`, or raise LaunchError(429) when a quota is full."""
    counted = _counted(held, hub, max_pending)
    if len(counted) >= limits.total:
        raise QuotaFull(
            f"This Binder is running as many servers as it can ({len(counted)} of "
            f"{limits.total}). Please try again in a few minutes.", "pod_quota")
    mine = sum(1 for name in counted if server_name(name).startswith(limits.repo_prefix))
    if mine >= limits.per_repo:
        raise QuotaFull(
            f"This repository already has {mine} server{'s' if mine != 1 else ''} "
            f"running, its limit is {limits.per_repo}. "
            "Please try again in a few minutes, when some of them have stopped.", "repo_quota")
    held[user] = {"taken": time.time(), "delivered": None}


def _deliver(held: Held, user: str) -> None:
    if user in held:
        held[user] = {**held[user], "delivered": time.time()}


class MemoryReservationBook(ReservationBook):
    def __init__(self) -> None:
        self._held: Held = {}
        self._lock = asyncio.Lock()

    async def reserve(self, user: str, hub: HubSnapshot, limits: Limits) -> None:
        async with self._lock:
            take_place(self._held, user, hub, limits)

    async def delivered(self, user: str) -> None:
        _deliver(self._held, user)

    async def release(self, user: str) -> None:
        # No lock and no await before the change: this runs in `finally` blocks of cancelled
        # launches, where waiting for a lock could be cancelled again.
        self._held.pop(user, None)

    async def count(self, hub: HubSnapshot, repo_prefix: str = PREFIX) -> int:
        async with self._lock:
            return sum(1 for name in _counted(self._held, hub) if server_name(name).startswith(repo_prefix))


class StoreReservationBook(ReservationBook):
    """Reservations in the state store: one record changed atomically, so two processes'
    check-and-takes cannot both see the last free place. A process that dies mid-launch leaves
    its reservation behind; it counts until the session is cleaned up (which releases it) or, at
    the latest, `max_pending` seconds (longer than any launch may take) after it was taken."""

    KEY = "all"
    TTL = 7 * 24 * 3600.0  # refreshed by every change; a service idle for a week holds none

    def __init__(self, store: StateStore, max_pending: float = math.inf) -> None:
        self.store = store
        self.max_pending = max_pending

    async def _change(self, edit: Callable[[Held], Any]) -> Any:
        def change(record: dict | None) -> tuple[dict, Any]:
            held = dict(record or {})
            result = edit(held)
            return held, result
        return await self.store.update(RESERVATIONS, self.KEY, change, self.TTL)

    async def reserve(self, user: str, hub: HubSnapshot, limits: Limits) -> None:
        await self._change(lambda held: take_place(held, user, hub, limits, self.max_pending))

    async def delivered(self, user: str) -> None:
        await self._change(lambda held: _deliver(held, user))

    async def release(self, user: str) -> None:
        # Runs in `finally` blocks of cancelled launches: shielded, so the place is freed even
        # when the launch's task is cancelled again while the store answers.
        await asyncio.shield(self._change(lambda held: held.pop(user, None)))

    async def count(self, hub: HubSnapshot, repo_prefix: str = PREFIX) -> int:
        held_names: set[str] = await self._change(
            lambda held: _counted(held, hub, self.max_pending))
        return sum(1 for name in held_names if server_name(name).startswith(repo_prefix))
