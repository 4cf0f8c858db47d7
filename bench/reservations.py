"""What the atomic quota adds to a launch: the old check-then-act count vs the reservation book's
check-and-take (+ delivered, + the count a later launch makes), on one hub listing of N users.

Both paths ask the hub for its user list once per launch (unchanged, not timed here: it runs while
git resolves the ref); the difference below is all the reservation book adds.
Usage: .venv/bin/python bench/reservations.py [--users 100] [--runs 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bindery.launches.hub_users import PREFIX, user_name  # noqa: E402
from bindery.launches.quota import limits_for  # noqa: E402
from bindery.launches.reservations import HubSnapshot, MemoryReservationBook  # noqa: E402

REPO = "https://git.example.org/bench/repo"


def old_check(users: list[dict], total: int, per_repo: int, prefix: str) -> None:
    """What bindery/launches/quota.py did before (count the listing; act later)."""
    active = [u for u in users if u["name"].startswith(PREFIX) and u.get("servers")]
    assert len(active) < total
    assert sum(1 for u in active if u["name"].startswith(prefix)) < per_repo


async def main(n_users: int, runs: int) -> None:
    users = [{"name": user_name(f"https://git.example.org/r/{i}", f"{i:08x}"), "servers": {"": {}}}
             for i in range(n_users)]
    limits = limits_for(REPO, n_users + runs + 10, runs + 10)
    old, new = [], []
    book = MemoryReservationBook()
    for i in range(runs):
        t0 = time.perf_counter()
        old_check(users, limits.total, limits.per_repo, limits.repo_prefix)
        old.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        snapshot = HubSnapshot.of(users, t0)  # the same listing, as the pipeline builds it
        name = f"{limits.repo_prefix}{i:08x}"
        await book.reserve(name, snapshot, limits)
        await book.delivered(name)
        new.append(time.perf_counter() - t0)
    # A crowd: 100 launches reserving at once against a per-repository quota of one.
    crowd = MemoryReservationBook()
    snapshot = HubSnapshot.of(users, time.perf_counter())
    one = limits_for(REPO, n_users + 200, 1)

    async def attempt(i: int) -> bool:
        try:
            await crowd.reserve(f"{one.repo_prefix}c{i:07x}", snapshot, one)
            return True
        except Exception:
            return False

    t0 = time.perf_counter()
    granted = sum(await asyncio.gather(*(attempt(i) for i in range(100))))
    crowd_ms = 1000 * (time.perf_counter() - t0)
    mo, mn = statistics.median(old), statistics.median(new)
    print(f"hub listing of {n_users} users, {runs} launches (each keeps its reservation)")
    print(f"old check-then-act:        median {1e6 * mo:8.1f} µs")
    print(f"reserve + delivered:       median {1e6 * mn:8.1f} µs (with up to {runs} held)")
    print(f"median added per launch:   {1000 * (mn - mo):+.3f} ms  ratio new/old {mn / mo:.2f}")
    print(f"100 simultaneous reserves, quota 1: {granted} granted, {crowd_ms:.1f} ms in all")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.users, args.runs))
