"""The state store's contract (bindery/state/base.py), run against SQLite and a real redis-server.

"Another process" is a second store instance over the same state (its own SQLite connection and
thread, or its own Redis connections); test_two_processes_... uses real processes.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

from bindery.events import LaunchError
from bindery.launches.quota import limits_for
from bindery.launches.reservations import HubSnapshot, StoreReservationBook

REPO = "https://git.example.org/a/b"


async def expired_after(store, kind: str, key: str, bound: float) -> float:
    """Seconds until the record is gone (asked every 50 ms, at most ``bound``)."""
    started = time.monotonic()
    while await store.get(kind, key) is not None:
        assert time.monotonic() - started < bound, f"{kind}/{key} still there after {bound} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_records_round_trip_and_expire(store_factory):
    """A record lives its time to live, not less, and is gone soon after. Measured against the clock
    of this run, not a fixed sleep, so a busy machine cannot make it pass or fail by accident."""
    store = store_factory()
    put_at = time.monotonic()
    await store.put("launch", "u1", {"spec": "x"}, ttl=2.0)
    assert await store.get("launch", "u1") == {"spec": "x"}
    assert await store_factory().get("launch", "u1") == {"spec": "x"}  # seen by another instance
    assert "u1" in await store.keys("launch")
    checked_at = time.monotonic()
    gone = checked_at - put_at + await expired_after(store, "launch", "u1", bound=30)
    assert gone >= 2.0 - 0.1  # not before its time to live (the clocks' resolution aside)
    assert "u1" not in await store.keys("launch")


async def test_pushed_digests_are_kept_per_image_and_seen_by_every_process(store_factory):
    a, b = store_factory(), store_factory()
    image = "127.0.0.1:5000/bindery/repo-1234abcd:" + "c" * 40
    assert await a.pushed_digest(image) is None  # never built here: nothing to launch by
    await a.record_digest(image, "sha256:" + "1" * 64)
    assert await b.pushed_digest(image) == "sha256:" + "1" * 64
    await b.record_digest(image, "sha256:" + "2" * 64)  # a rebuild replaces it
    assert await a.pushed_digest(image) == "sha256:" + "2" * 64
    assert await a.pushed_digest(image.replace(":c", ":d")) is None  # per image name


async def test_events_get_consecutive_indices_across_instances(store_factory):
    a, b = store_factory(), store_factory()
    results = await asyncio.gather(*(s.append("s1", json.dumps({"n": i}))
                                     for i, s in enumerate([a, b] * 10)))
    assert sorted(results) == list(range(20))
    events = await b.events("s1")
    assert [i for i, _ in events] == list(range(20))
    assert [i for i, _ in await a.events("s1", after=14)] == [15, 16, 17, 18, 19]
    assert await a.events("other") == []


async def test_wait_events_wakes_on_an_append_elsewhere_and_is_bounded(store_factory):
    a, b = store_factory(poll=0.05), store_factory(poll=0.05)
    started = time.monotonic()
    assert await a.wait_events("s2", -1, timeout=0.3) == []
    assert 0.25 <= time.monotonic() - started < 3  # bounded wait, empty answer
    waiter = asyncio.ensure_future(a.wait_events("s2", -1, timeout=30))
    await b.append("s2", "hello")
    assert await asyncio.wait_for(waiter, 10) == [(0, "hello")]


async def test_claim_only_when_owner_is_gone_or_released(store_factory):
    a, b = store_factory(), store_factory()
    await a.create_session("s3", {"provider": "gh", "spec": "o/r/main", "owner": "A"})
    await a.beat("A", stale_after=2.0)
    beat_at = time.monotonic()
    assert await b.claim("s3", "B") is None  # A is alive
    claimed = None
    while claimed is None:  # A's heartbeat going stale is what is under test: ask until it is
        assert time.monotonic() - beat_at < 30, "A's session never went stale"
        await asyncio.sleep(0.05)
        claimed = await b.claim("s3", "B")
    assert time.monotonic() - beat_at >= 2.0 - 0.1  # not before A's heartbeat was stale
    assert claimed is not None and claimed["owner"] == "B" and claimed["spec"] == "o/r/main"
    await b.beat("B", stale_after=30)
    assert await a.claim("s3", "A") is None  # B holds it now
    await b.release_session("s3", "B")  # B shuts down: the next reconnect takes it at once
    assert (await a.claim("s3", "A"))["owner"] == "A"
    assert "s3" in await b.open_sessions()
    await a.end_session("s3")
    assert "s3" not in await b.open_sessions()
    await a.owner_gone("A")
    assert await b.claim("s3", "B") is None  # an ended session is never re-run


async def test_one_claim_wins_among_concurrent_claimers(store_factory):
    first = store_factory()
    await first.create_session("s4", {"owner": ""})
    stores = [store_factory() for _ in range(5)]
    for i, s in enumerate(stores):  # live processes beat (an owner without a heartbeat is gone)
        await s.beat(f"P{i}", stale_after=30)
    results = await asyncio.gather(*(s.claim("s4", f"P{i}") for i, s in enumerate(stores)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert (await first.session("s4"))["owner"] == winners[0]["owner"]


async def test_ten_concurrent_reservations_over_two_instances_against_three(store_factory):
    books = [StoreReservationBook(store_factory()), StoreReservationBook(store_factory())]
    hub = HubSnapshot(frozenset(), time.time())
    limits = limits_for(REPO, 100, 3)
    users = [f"{limits.repo_prefix}{i:08x}" for i in range(10)]

    async def attempt(i: int) -> bool:
        try:
            await books[i % 2].reserve(users[i], hub, limits)
            return True
        except LaunchError as exc:
            assert exc.status_code == 429 and "limit is 3" in exc.message
            return False
    assert sum(await asyncio.gather(*(attempt(i) for i in range(10)))) == 3
    assert await books[1].count(hub, limits.repo_prefix) == 3
    held = [u for u in users if u in (await books[0].store.get("reservations", "all"))]
    await books[0].release(held[0])  # a failed launch frees its place for the next one
    assert await books[1].count(hub, limits.repo_prefix) == 2


async def test_delivered_reservation_ends_when_a_later_listing_lacks_its_server(store):
    book = StoreReservationBook(store)
    limits = limits_for(REPO, 100, 1)
    user = f"{limits.repo_prefix}00000001"
    await book.reserve(user, HubSnapshot(frozenset(), time.time()), limits)
    before = time.time()
    await book.delivered(user)
    assert await book.count(HubSnapshot(frozenset(), before), limits.repo_prefix) == 1
    assert await book.count(HubSnapshot(frozenset(), time.time() + 1), limits.repo_prefix) == 0


async def test_rate_bucket_take_is_atomic_across_instances(store_factory):
    a, b = store_factory(), store_factory()
    now = time.time()
    taken = await asyncio.gather(*(s.take_token("10.0.0.1", 5, 60.0, now)
                                   for s in [a, b] * 6))
    assert sum(allowed for _, allowed in taken) == 5
    tokens, allowed = await a.take_token("10.0.0.1", 5, 60.0, now + 12.0, spend=False)
    assert allowed and tokens == pytest.approx(1.0)  # refilled one in period/limit seconds
    assert (await b.take_token("10.0.0.2", 5, 60.0, now))[1]  # buckets are per key


SCRIPT = """
import asyncio, sys, time
from bindery.events import LaunchError
from bindery.launches.quota import limits_for
from bindery.launches.reservations import HubSnapshot, StoreReservationBook
from tests.state.conftest import make_store
from pathlib import Path

async def main(kind, url, folder, first):
    book = StoreReservationBook(make_store(kind, url, Path(folder)))
    limits = limits_for("https://git.example.org/a/b", 100, 3)
    hub = HubSnapshot(frozenset(), time.time())
    async def one(i):
        try:
            await book.reserve(f"{limits.repo_prefix}{first + i:08x}", hub, limits)
            return 1
        except LaunchError:
            return 0
    print(sum(await asyncio.gather(*(one(i) for i in range(5)))))
    await book.store.aclose()
asyncio.run(main(*sys.argv[1:4], int(sys.argv[4])))
"""


async def test_two_processes_ten_reservations_against_three(store_factory, redis_url, tmp_path):
    store_factory()  # empties the shared state for this test (and picks the kind)
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", SCRIPT, store_factory.kind, redis_url, str(tmp_path), str(first),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for first in (0, 100)]
    outs = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1].decode()[-2000:] for o in outs]
    assert sum(int(o[0]) for o in outs) == 3


async def test_bad_state_url_is_refused_clearly():
    from bindery.settings import Settings
    from bindery.state import open_store

    with pytest.raises(ValueError, match="redis://"):
        open_store(Settings(state_url="mysql://x"))


async def test_a_dead_launch_s_reservation_ends_after_the_longest_launch(store):
    book = StoreReservationBook(store, max_pending=0.2)
    limits = limits_for(REPO, 100, 1)
    user = f"{limits.repo_prefix}00000002"
    await book.reserve(user, HubSnapshot(frozenset(), time.time()), limits)
    assert await book.count(HubSnapshot(frozenset(), time.time()), limits.repo_prefix) == 1
    listed = HubSnapshot(frozenset({user}), time.time() + 1)  # the hub still shows its server
    assert await book.count(listed, limits.repo_prefix) == 1
    later = HubSnapshot(frozenset(), time.time() + 1)  # older than any launch, and not on the hub
    assert await book.count(later, limits.repo_prefix) == 0


async def test_ended_sessions_are_forgotten_oldest_first_to_keep_within_bytes(store_factory):
    """Over its bytes, the store forgets ended sessions (record and events), least recently
    watched first, and stops once under the target; running sessions and other records stay."""
    store = store_factory()
    await store.put("launch", "someone", {"spec": "x"}, ttl=600)
    base = await store.used_bytes()
    for i in range(60):
        sid = f"s{i:03d}"
        await store.create_session(sid, {"provider": "gh", "spec": "a/b/main"})
        for _ in range(10):
            await store.append(sid, json.dumps({"message": "x" * 2000}))
        if i < 50:
            await store.end_session(sid)
    full = await store.used_bytes()
    assert full - base > 60 * 10 * 2000 // 2  # what the events take is measured
    assert await store.shed(full) == []  # within: nothing forgotten
    target = base + (full - base) // 2
    forgotten = len(await store.shed(target))
    assert await store.used_bytes() <= target
    assert 0 < forgotten < 50
    for i in range(60):
        sid = f"s{i:03d}"
        gone = await store.session(sid) is None
        assert gone == (i < forgotten), sid
        assert (await store.events(sid) == []) == gone, sid
    assert await store.launch_record("someone") == {"spec": "x"}
    assert len(await store.shed(0)) == 50 - forgotten  # never a session still running
    assert len(await store.open_sessions()) == 10
