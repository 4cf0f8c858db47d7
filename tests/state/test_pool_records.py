"""Warm pools' records (bindery/state/pool_records.py) on both stores, with several store instances as
several replicas: a server is handed to one launch only, never again, and one refiller holds the
lease at a time."""

from __future__ import annotations

import asyncio

from bindery.state.pool_records import PoolBook, PoolOrigin, pool_key

ORIGIN = PoolOrigin("git", "http%3A%2F%2Fgit.test%2Frepo/main", "http://git.test/repo",
                    "http://git.test/repo")
KEY = pool_key(ORIGIN.repo, "main")
IMAGE = "registry/r:1"


async def ready_pool(book: PoolBook, users: list[str], image: str = IMAGE) -> None:
    await book.take(KEY, ORIGIN, image, create=True, window=None)  # the first launch creates it
    for user in users:
        assert await book.add_starting(KEY, user, image, "owner-a", wanted=len(users))
        assert await book.mark_ready(KEY, user, f"/user/{user}/")


async def test_concurrent_claims_across_replicas_never_share_a_server(store_factory):
    books = [PoolBook(store_factory()) for _ in range(4)]  # four "replicas"
    await ready_pool(books[0], ["p1", "p2", "p3"])
    takes = await asyncio.gather(*(books[i % 4].take(KEY, ORIGIN, IMAGE, False, None)
                                   for i in range(20)))
    got = [t.user for t in takes if t is not None]
    assert sorted(got) == ["p1", "p2", "p3"]  # each once; the other 17 launches missed
    record = await books[1].get(KEY)
    assert record["servers"] == {}
    assert set(record["claimed"]) == {"p1", "p2", "p3"}


async def test_a_claimed_server_never_returns_to_the_pool(store):
    book = PoolBook(store)
    await ready_pool(book, ["p1"])
    first = await book.take(KEY, ORIGIN, IMAGE, False, None)
    assert first is not None and first.user == "p1"
    # The refiller cannot mark it ready again, nor drop (and so remove) it: it is the person's.
    assert not await book.mark_ready(KEY, "p1", "/user/p1/")
    assert await book.drop(KEY, ["p1"]) == []
    assert await book.take(KEY, ORIGIN, IMAGE, False, None) is None
    # A new pool server is another user; only it is handed out next.
    assert await book.add_starting(KEY, "p2", IMAGE, "owner-a", wanted=1)
    assert await book.take(KEY, ORIGIN, IMAGE, False, None) is None  # not ready yet
    assert await book.mark_ready(KEY, "p2", "/user/p2/")
    second = await book.take(KEY, ORIGIN, IMAGE, False, None)
    assert second is not None and second.user == "p2"


async def test_only_servers_of_the_launched_image_are_claimed(store):
    book = PoolBook(store)
    await ready_pool(book, ["old"], image="registry/r:old")
    assert await book.take(KEY, ORIGIN, "registry/r:new", False, None) is None
    await book.patch(KEY, image="registry/r:new")  # the refiller followed the new commit
    # A server of the old image is not added to the new image's pool.
    assert not await book.add_starting(KEY, "x", "registry/r:old", "owner-a", wanted=2)
    assert await book.add_starting(KEY, "new", "registry/r:new", "owner-a", wanted=2)


async def test_no_record_without_a_pool_and_launch_times_for_the_auto_rate(store):
    book = PoolBook(store)
    assert await book.take(KEY, ORIGIN, IMAGE, create=False, window=60) is None
    assert await book.get(KEY) is None
    for _ in range(3):
        await book.take(KEY, ORIGIN, IMAGE, create=True, window=60)
    record = await book.get(KEY)
    assert len(record["launches"]) == 3 and record["spec"] == ORIGIN.spec


async def test_one_refiller_holds_the_lease(store_factory):
    a, b = PoolBook(store_factory()), PoolBook(store_factory())
    held = await asyncio.gather(a.hold_lease("a", 30), b.hold_lease("b", 30))
    assert sorted(held) == [False, True]
    holder, other = ("a", "b") if held[0] else ("b", "a")
    assert await a.hold_lease(holder, 30)  # extends its own
    assert not await b.hold_lease(other, 30)
    await a.release_lease(other)  # not the holder's: changes nothing
    assert not await b.hold_lease(other, 30)
    await a.release_lease(holder)
    assert await b.hold_lease(other, 30)
    assert not await a.hold_lease(holder, 0.5)
