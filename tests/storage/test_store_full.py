"""A full run store, for real: the run engine (podman) with its image store on a 24 MiB loop-mounted
ext4 file system pulls, from the real registry, an image with a 40 MiB layer. The pull ends with a
`failed` event a person understands (507, no traceback, not the repository's fault), and a small
image pulls fine right after (the failed pull left no debris that keeps the store full)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from bindery import datadir, process_runner
from bindery.events import StoreFull
from bindery.launches.prepull import Prepuller
from bindery.settings import Settings
from bindery.stack import podman, registry_server
from tests.conftest import free_port
from tests.registry_push import push_image

MIB = 1 << 20


@pytest.fixture
def small_run_store(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", registry_port=free_port(),
                        cache_dir=tmp_path / "cache")
    paths = datadir.StackPaths.of(settings)
    paths.make()
    image = tmp_path / "run.ext4"
    with open(image, "wb") as f:
        f.truncate(24 * MIB)
    assert process_runner.run(["mkfs.ext4", "-q", "-F", "-m", "0", image], timeout=60).returncode == 0
    store = paths.store("run")
    store.mkdir(parents=True, exist_ok=True)
    mounted = process_runner.run(["mount", "-o", "loop", image, store], timeout=60)
    assert mounted.returncode == 0, mounted.stderr
    try:
        registry_server.start(settings, log=lambda _: None)
        podman.start(settings, "run", log=lambda _: None)
        yield settings
    finally:
        podman.stop(settings, "run")
        registry_server.stop(settings)
        process_runner.run(["umount", "-l", store], timeout=60)
        image.unlink(missing_ok=True)


async def test_a_pull_into_a_full_store_fails_clearly_and_the_next_one_works(small_run_store):
    settings = small_run_store
    url, host = settings.registry.url, settings.registry.host
    with httpx.Client(timeout=120, auth=_pusher(settings)) as client:
        big = push_image(client, url, "bindery/big", "c0ffee", {"blob": os.urandom(40 * MIB)})
        small = push_image(client, url, "bindery/small", "c0ffee", {"blob": b"fits"})
    assert big.status_code == 201 and small.status_code == 201, (big.text, small.text)
    pulls = Prepuller(settings.run_socket, 120)
    try:
        with pytest.raises(StoreFull) as full:
            async for _ in pulls.pull(f"{host}/bindery/big:c0ffee"):
                pass
        event = full.value.event()
        assert event.phase == "failed" and full.value.store == "run"
        assert event.data()["status_code"] == 507
        assert "ran out of disk space" in event.message and "Traceback" not in event.message
        async for _ in pulls.pull(f"{host}/bindery/small:c0ffee"):
            pass
        assert await pulls.present(f"{host}/bindery/small:c0ffee")
    finally:
        await pulls.aclose()


def _pusher(settings: Settings):
    from bindery.registry_client import RegistryAuth

    return RegistryAuth(datadir.registry_credential(settings))
