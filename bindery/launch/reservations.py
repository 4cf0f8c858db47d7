"""The quota reservation book: check-and-take in one step, so a crowd cannot overshoot a quota.

A launch takes a reservation under the username it will use, before building or launching, and
keeps it until its server is gone: released at once when the launch fails or is abandoned; once
`ready`, marked delivered and dropped the first time a hub listing taken *after* the delivery no
longer shows that user's server (culled, stopped). What a quota counts is the union, by username,
of the hub's active bindery users and the reservations, so a server is never counted twice and
a server the hub has not listed yet is never counted zero times.

:class:`ReservationBook` is the interface; :class:`MemoryReservationBook` keeps it in this process
(one bindery process per hub today). A shared state store (SQLite, Redis) implements the same
methods with the check-and-take as one transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from bindery.events import LaunchError
from bindery.launch.names import PREFIX, is_bindery_user


@dataclass(frozen=True)
class HubSnapshot:
    """Names of the bindery users with a server, as the hub listed them at `taken_at`."""

    active: frozenset[str]
    taken_at: float = field(default_factory=time.monotonic)  # before the listing was asked for

    @classmethod
    def of(cls, users: Iterable[dict], taken_at: float) -> HubSnapshot:
        names = {u.get("name", "") for u in users if u.get("servers")}
        return cls(frozenset(n for n in names if is_bindery_user(n)), taken_at)


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


@dataclass
class _Held:
    delivered_at: float | None = None


class MemoryReservationBook(ReservationBook):
    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}
        self._lock = asyncio.Lock()

    def _counted(self, hub: HubSnapshot) -> set[str]:
        # A delivered reservation that a listing taken after its delivery no longer shows: the
        # server is gone. Anything older than the delivery (or not delivered) still counts.
        gone = [user for user, held in self._held.items()
                if held.delivered_at is not None and held.delivered_at < hub.taken_at
                and user not in hub.active]
        for user in gone:
            del self._held[user]
        return set(hub.active) | set(self._held)

    async def reserve(self, user: str, hub: HubSnapshot, limits: Limits) -> None:
        async with self._lock:
            counted = self._counted(hub)
            if len(counted) >= limits.total:
                raise LaunchError(
                    f"This Binder is running as many servers as it can ({len(counted)} of "
                    f"{limits.total}). Please try again in a few minutes.", 429)
            mine = sum(1 for name in counted if name.startswith(limits.repo_prefix))
            if mine >= limits.per_repo:
                raise LaunchError(
                    f"This repository already has {mine} server{'s' if mine != 1 else ''} "
                    f"running, its limit is {limits.per_repo}. "
                    "Please try again in a few minutes, when some of them have stopped.", 429)
            self._held[user] = _Held()

    async def delivered(self, user: str) -> None:
        held = self._held.get(user)
        if held is not None:
            held.delivered_at = time.monotonic()

    async def release(self, user: str) -> None:
        # No lock and no await before the change: this runs in `finally` blocks of cancelled
        # launches, where waiting for a lock could be cancelled again.
        self._held.pop(user, None)

    async def count(self, hub: HubSnapshot, repo_prefix: str = PREFIX) -> int:
        async with self._lock:
            return sum(1 for name in self._counted(hub) if name.startswith(repo_prefix))
