"""The registry kept under its budget, against the real `docker-registry` binary (token auth, the
stack's own config): least recently launched images are deleted through its API and their blobs
reclaimed on disk by its garbage collector; protected, recent and foreign images stay, and the
registry is writable again afterwards."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx
import pytest

from bindery import datadir
from bindery.backoff import wait_until_async
from bindery.events import LaunchError
from bindery.launches import collection_wait
from bindery.metrics import Metrics
from bindery.registry_client import MANIFEST_HEADERS, RegistryAuth
from bindery.settings import Settings
from bindery.stack import registry_server
from bindery.state import open_store, registry_collection
from bindery.storage.disk_use import folder_bytes
from bindery.storage.keeper import StorageKeeper
from tests.conftest import free_port
from tests.registry_push import push_image

MIB = 1 << 20


@pytest.fixture
def registry(tmp_path: Path):
    # api_only: no run engine here whose containers could protect an image
    settings = Settings(data_dir=tmp_path / "data", registry_port=free_port(), api_only=True)
    registry_server.start(settings, log=lambda _: None)
    try:
        yield settings
    finally:
        registry_server.stop(settings)


def blob_file(settings: Settings, digest: str) -> Path:
    hexa = digest.removeprefix("sha256:")
    return (datadir.StackPaths.of(settings).registry_data / "docker/registry/v2/blobs/sha256"
            / hexa[:2] / hexa / "data")


async def test_least_recently_launched_images_go_and_their_blobs_with_them(registry: Settings):
    url, host = registry.registry.url, registry.registry.host
    names = ["old-1", "old-2", "old-3", "recent", "pool", "building", "just-built", "forgotten"]
    layers: dict[str, str] = {}  # repo -> its layer's digest
    with httpx.Client(timeout=30, auth=RegistryAuth(datadir.registry_credential(registry))) as client:
        for name in [*names, "foreign"]:
            repo = f"other/{name}" if name == "foreign" else f"bindery/{name}"
            written = push_image(client, url, repo, "c0ffee", {"blob": os.urandom(MIB)})
            assert written.status_code == 201, written.text
            manifest = client.get(f"{url}/v2/{repo}/manifests/c0ffee", headers=MANIFEST_HEADERS).json()
            layers[repo] = manifest["layers"][0]["digest"]
    used = folder_bytes(datadir.StackPaths.of(registry).registry_data)
    # Budget: the low mark 2.5 MiB under the use, so three 1 MiB images must go (and a fourth not)
    settings = registry.model_copy(update={
        "registry_bytes": 2 * (used - 5 * MIB // 2), "store_high_ratio": 0.5,
        "store_low_ratio": 0.5, "store_clean_grace_seconds": 600})
    image = {n: f"{host}/bindery/{n}:c0ffee" for n in names}
    now = time.time()
    store = open_store(settings)
    try:
        keeper = StorageKeeper(settings, store, Metrics(), owner="test",
                               wanted=_names(image["pool"]), building=_names(image["building"]))
        keeper.drain_seconds = 1.0  # the build below does not end: the collection is deferred
        for name, age in (("old-1", 5000), ("old-2", 4000), ("old-3", 3000), ("recent", 10),
                          ("pool", 9000), ("building", 9000)):
            await store.put("image-used", image[name], {"at": now - age}, ttl=3600)
        # pushed by a build just now, never launched yet ("forgotten": no record of either)
        await store.record_digest(image["just-built"], "sha256:" + "0" * 64)
        deferred = await keeper.clean("registry")  # a build is in progress: manifests only
        assert deferred is not None and deferred.collect_seconds == 0
        for repo in ("bindery/forgotten", "bindery/old-1"):  # their blobs wait for the collection
            assert blob_file(registry, layers[repo]).exists()
        keeper.building = _names()  # the build ended: the next pass collects
        result = await keeper.clean("registry")
    finally:
        await store.aclose()
    assert result is not None
    gone = {f"bindery/{n}" for n in ("forgotten", "old-1", "old-2")}
    assert deferred.removed == [image[n] for n in ("forgotten", "old-1", "old-2")], deferred
    assert result.removed == []  # nothing more: it collected what the first pass deleted
    print(f"registry: {result.before} bytes before, {result.after} after, "
          f"{result.reclaimed} reclaimed; collection {result.collect_seconds:.2f} s, "
          f"pass {result.seconds:.2f} s")
    with httpx.Client(timeout=30, auth=RegistryAuth(datadir.registry_credential(registry))) as client:
        for repo, layer in layers.items():
            found = client.head(f"{url}/v2/{repo}/manifests/c0ffee", headers=MANIFEST_HEADERS)
            assert found.status_code == (404 if repo in gone else 200), (repo, found.status_code)
            assert blob_file(registry, layer).exists() == (repo not in gone), repo
        # writable again: a push after the collection succeeds
        assert push_image(client, url, "bindery/after", "c0ffee", {"b": b"x"}).status_code == 201
    assert result.collect_seconds > 0

    # what the collection runs on: the same registry, read-only (pulls go on, pushes are refused)
    registry_server.start(registry, log=lambda _: None, read_only=True)
    try:
        with httpx.Client(timeout=30, auth=RegistryAuth(datadir.registry_credential(registry))) as c:
            assert c.head(f"{url}/v2/bindery/recent/manifests/c0ffee",
                          headers=MANIFEST_HEADERS).status_code == 200
            assert push_image(c, url, "bindery/during", "c0ffee", {"b": b"y"}).status_code >= 400
    finally:
        registry_server.start(registry, log=lambda _: None)
    assert result.before - result.after >= 3 * MIB  # the three layers, measured on disk


async def test_a_build_waits_for_the_collection_and_gives_up_saying_why(tmp_path: Path, monkeypatch):
    settings = Settings(data_dir=tmp_path / "data", registry_gc_timeout=0.5)
    store = open_store(settings)

    class Services:  # what collection_over reads: the settings and the state store
        pass

    services = Services()
    services.settings, services.store = settings, store
    try:
        await registry_collection.begin(store, "keeper", 30)
        waiting = asyncio.ensure_future(_events(services))
        await asyncio.sleep(0)
        assert not waiting.done()
        await registry_collection.end(store)
        events = await asyncio.wait_for(waiting, 10)
        assert [e.phase for e in events] == ["waiting"] and "reclaiming space" in events[0].message

        monkeypatch.setattr(collection_wait, "MARGIN", 0.5)
        monkeypatch.setattr(registry_collection, "DRAIN", 0.0)
        await registry_collection.begin(store, "keeper", 30)
        with pytest.raises(LaunchError) as failed:
            await asyncio.wait_for(_events(services), 10)
        assert failed.value.status_code == 503 and "still reclaiming space after 1 s" in failed.value.message
    finally:
        await store.aclose()


async def _events(services) -> list:
    return [e async for e in collection_wait.collection_over(services)]


def _names(*names: str):
    async def listed() -> list[str]:
        return list(names)
    return listed


async def test_a_build_announced_in_another_process_defers_the_collection(registry: Settings):
    """Two processes (two handles on the stack's state store): a launch in one announces its build
    before it looks for a collection; the keeper in the other, whose own building list is empty,
    defers its collection while the announcement stands and collects once it is withdrawn."""
    url, host = registry.registry.url, registry.registry.host
    with httpx.Client(timeout=30, auth=RegistryAuth(datadir.registry_credential(registry))) as client:
        written = push_image(client, url, "bindery/stale", "c0ffee", {"blob": os.urandom(MIB)})
        assert written.status_code == 201, written.text
        layer = client.get(f"{url}/v2/bindery/stale/manifests/c0ffee",
                           headers=MANIFEST_HEADERS).json()["layers"][0]["digest"]
    settings = registry.model_copy(update={"registry_bytes": 1, "store_clean_grace_seconds": 0})
    launching, keeping = open_store(settings), open_store(settings)

    class Services:  # what the announcement and the wait read: the settings and the state store
        pass

    services = Services()
    services.settings, services.store = settings, launching
    try:
        keeper = StorageKeeper(settings, keeping, Metrics(), owner="keeper", building=_names())
        keeper.drain_seconds = 1.0  # the announced build does not end here: deferred after it
        await keeping.put("image-used", f"{host}/bindery/stale:c0ffee", {"at": 1.0}, ttl=3600)
        assert await collection_wait.announce_build(services, f"{host}/bindery/new:abc")
        assert await _events(services) == []  # no collection yet: the build goes ahead
        deferred = await keeper.clean("registry")
        assert deferred is not None and deferred.removed == [f"{host}/bindery/stale:c0ffee"]
        assert deferred.collect_seconds == 0 and blob_file(registry, layer).exists()
        assert await registry_collection.current(launching) is None  # the keeper's record is gone

        await collection_wait.retire_build(services, f"{host}/bindery/new:abc")
        collected = await keeper.clean("registry")
        assert collected is not None and collected.collect_seconds > 0
        assert not blob_file(registry, layer).exists()
    finally:
        await launching.aclose()
        await keeping.aclose()


async def test_a_collection_waits_for_builds_under_way_and_a_waiting_build_does_not_hold_it(
        registry: Settings):
    """A steady stream of builds must not defer every collection: the collection waits (bounded)
    for the builds under way while new ones wait for it, and a build waiting for it withdraws its
    announcement meanwhile (and makes it again once the collection is over)."""
    url, host = registry.registry.url, registry.registry.host
    with httpx.Client(timeout=30, auth=RegistryAuth(datadir.registry_credential(registry))) as client:
        assert push_image(client, url, "bindery/stale", "c0ffee",
                          {"blob": os.urandom(MIB)}).status_code == 201
    settings = registry.model_copy(update={"registry_bytes": 1, "store_clean_grace_seconds": 0})
    store = open_store(settings)

    class Services:
        pass

    services = Services()
    services.settings, services.store = settings, store
    under_way, waiting = f"{host}/bindery/under-way:abc", f"{host}/bindery/waiting:abc"
    try:
        keeper = StorageKeeper(settings, store, Metrics(), owner="keeper", building=_names())
        await store.put("image-used", f"{host}/bindery/stale:c0ffee", {"at": 1.0}, ttl=3600)
        assert await collection_wait.announce_build(services, under_way)
        cleaning = asyncio.ensure_future(keeper.clean("registry"))
        await wait_until_async(lambda: registry_collection.current(store), timeout=30,
                               what="the collection to begin its drain")
        assert await collection_wait.announce_build(services, waiting)
        events = []

        async def wait_for_it() -> None:
            async for event in collection_wait.collection_over(services, waiting):
                events.append(event)

        waiter = asyncio.ensure_future(wait_for_it())
        await wait_until_async(lambda: bool(events), timeout=30, what="the build to wait")
        assert await registry_collection.announced_builds(store) == [under_way]  # withdrawn
        assert not cleaning.done()  # still draining: a build is under way
        await collection_wait.retire_build(services, under_way)  # it ends
        result = await asyncio.wait_for(cleaning, 60)
        assert result is not None and result.collect_seconds > 0  # collected, not deferred
        await asyncio.wait_for(waiter, 30)
        assert await registry_collection.announced_builds(store) == [waiting]  # announced again
    finally:
        await store.aclose()
