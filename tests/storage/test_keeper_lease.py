"""The keepers' cleaning lease on a real state store: one process cleans a store at a time, and a
process that died gives the store up after the lease's time, even while the others keep asking."""

from __future__ import annotations

import time

from bindery.metrics import Metrics
from bindery.settings import Settings
from bindery.state import open_store
from bindery.storage.keeper import StorageKeeper

PERIOD = 10.0  # store_clean_interval_seconds: the lease lasts three of them


async def test_a_dead_owners_lease_runs_out_although_others_keep_asking(tmp_path, monkeypatch):
    now = [time.time()]
    monkeypatch.setattr(time, "time", lambda: now[0])  # the store's expiry and the lease's alike
    settings = Settings(data_dir=tmp_path, store_clean_interval_seconds=PERIOD)
    store = open_store(settings)
    try:
        first = StorageKeeper(settings, store, Metrics(), owner="first")
        second = StorageKeeper(settings, store, Metrics(), owner="second")
        assert await first._lease("run")
        for _ in range(10):  # the first keeps cleaning: the second never gets the store
            now[0] += PERIOD
            assert not await second._lease("run")
            assert await first._lease("run")
        # The first dies (a restart, a crash); the second asks every period, as its loop does:
        # the lease (three periods) is over by its fourth ask.
        asked = 0
        while not await second._lease("run"):
            asked += 1
            assert asked <= 4, "the dead owner's lease was renewed by those asking for it"
            now[0] += PERIOD
        assert not await first._lease("run")  # back, it is now the second's
    finally:
        await store.aclose()
