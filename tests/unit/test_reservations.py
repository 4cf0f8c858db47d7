"""The reservation book's contract, written once for every implementation.

The real-stack test of the same rule (ten concurrent launches against a quota of one) is in
tests/production/test_public_safety_hub.py; this pins down the book's own semantics quickly.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from pathlib import Path

import pytest

from bindery.events import LaunchError
from bindery.launches.quota import limits_for
from bindery.launches.reservations import (HubSnapshot, MemoryReservationBook, ReservationBook,
                                         StoreReservationBook)
from bindery.state.sqlite_store import SQLiteStore

REPO = "https://git.example.org/a/b"
PREFIX = limits_for(REPO, 1, 1).repo_prefix


@pytest.fixture(params=["memory", "sqlite"])
async def book(request, tmp_path):
    """In this process, or in the state store (Redis: tests/state/test_store_contract.py)."""
    if request.param == "memory":
        yield MemoryReservationBook()
        return
    store = SQLiteStore(tmp_path / "state.sqlite")
    yield StoreReservationBook(store)
    await store.aclose()


def empty() -> HubSnapshot:
    return HubSnapshot(frozenset(), time.time())


async def try_reserve(book: ReservationBook, user: str, hub: HubSnapshot, total: int,
                      per_repo: int) -> str:
    try:
        await book.reserve(user, hub, limits_for(REPO, total, per_repo))
        return "reserved"
    except LaunchError as exc:
        return f"refused {exc.status_code}"


def _reserve_in_a_process(path: str, prefix: str, start, results) -> None:
    """One OS process of the race: five reservations at once, after every process is ready."""
    async def main() -> list[str]:
        store = SQLiteStore(Path(path))
        book = StoreReservationBook(store)
        start.wait(30)  # all processes leave this line together
        try:
            return await asyncio.gather(*(try_reserve(book, f"{PREFIX}{prefix}{i}", empty(), 100, 1)
                                          for i in range(5)))
        finally:
            await store.aclose()
    results.extend(asyncio.run(main()))


def test_reservations_from_two_processes_race_and_one_wins(tmp_path):
    """Two processes (each its own SQLite connection, five launches at once) check-and-take the
    last place of a quota together: exactly one gets it. A book that read, then wrote in a second
    step, would let both processes see the place free."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        results = manager.list()
        start = ctx.Barrier(2)
        workers = [ctx.Process(target=_reserve_in_a_process,
                               args=(str(tmp_path / "state.sqlite"), name, start, results))
                   for name in ("p", "q")]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        assert [w.exitcode for w in workers] == [0, 0]
        assert sorted(results) == ["refused 429"] * 9 + ["reserved"]


async def test_ten_concurrent_reservations_against_a_quota_of_one(book):
    hub = empty()  # every caller saw the same (stale) listing: the race of check-then-act
    results = await asyncio.gather(*(try_reserve(book, f"{PREFIX}{i}", hub, 100, 1)
                                     for i in range(10)))
    assert sorted(results) == ["refused 429"] * 9 + ["reserved"]
    results = await asyncio.gather(*(try_reserve(book, f"{PREFIX}t{i}", hub, 2, 100)
                                     for i in range(10)))
    assert sorted(results) == ["refused 429"] * 9 + ["reserved"]  # 1 held + 1 more = total 2
    assert await book.count(hub) == 2
    assert await book.count(hub, PREFIX) == 2
    assert await book.count(hub, "b-ffffffff-") == 0


async def test_release_frees_the_place_and_the_hub_listing_counts_too(book):
    user = f"{PREFIX}x"
    await book.reserve(user, empty(), limits_for(REPO, 10, 1))
    await book.release(user)
    assert await book.count(empty()) == 0
    # A server the hub lists (started by an earlier bindery) counts without any reservation.
    listed = HubSnapshot(frozenset({f"{PREFIX}old"}), time.time())
    assert await try_reserve(book, user, listed, 10, 1) == "refused 429"
    # Another repository's servers count only against the total.
    other = HubSnapshot(frozenset({"b-ffffffff-old"}), time.time())
    assert await try_reserve(book, user, other, 2, 1) == "reserved"
    assert await try_reserve(book, f"{PREFIX}y", other, 2, 5) == "refused 429"


async def test_a_delivered_server_counts_until_a_later_listing_no_longer_shows_it(book):
    user = f"{PREFIX}x"
    stale = empty()  # asked for before the server was ready
    await book.reserve(user, stale, limits_for(REPO, 10, 1))
    await book.delivered(user)
    # A listing older than the delivery that does not show the server: still counted.
    assert await book.count(stale) == 1
    # A later listing that shows it: counted once (the union is by username).
    shown = HubSnapshot(frozenset({user}), time.time())
    assert await book.count(shown) == 1
    # A later listing without it: the server is gone, the place is free.
    assert await book.count(empty()) == 0
    assert await try_reserve(book, f"{PREFIX}y", empty(), 10, 1) == "reserved"
