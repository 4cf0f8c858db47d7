"""A pull whose registry goes away under it (restarted read-only for its garbage collection, or by
the supervisor) is tried again, bounded, and completes once the registry is back: the real run
engine (podman) pulling from the real registry, stopped and started again around the pull."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from bindery import datadir
from bindery.backoff import wait_until_async
from bindery.launches.prepull import Prepuller
from bindery.registry_client import RegistryAuth
from bindery.settings import Settings
from bindery.stack import podman, registry_server
from tests.conftest import discard_stores, free_port
from tests.registry_push import push_image

MIB = 1 << 20


@pytest.fixture
def engine_and_registry(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", registry_port=free_port(),
                        cache_dir=tmp_path / "cache")
    registry_server.start(settings, log=lambda _: None)
    podman.start(settings, "run", log=lambda _: None)
    try:
        yield settings
    finally:
        podman.stop(settings, "run")
        registry_server.stop(settings)
        discard_stores(settings.data_dir)


async def test_a_pull_the_registry_broke_off_is_tried_again_and_completes(engine_and_registry):
    settings = engine_and_registry
    url, host = settings.registry.url, settings.registry.host
    with httpx.Client(timeout=120, auth=RegistryAuth(datadir.registry_credential(settings))) as c:
        pushed = push_image(c, url, "bindery/interrupted", "c0ffee", {"blob": os.urandom(2 * MIB)})
    assert pushed.status_code == 201, pushed.text
    name = f"{host}/bindery/interrupted:c0ffee"
    registry_server.stop(settings)  # gone when the pull begins, as during a collection's restart
    pulls = Prepuller(settings.run_socket, 180)
    events = []

    async def follow() -> None:
        async for event in pulls.pull(name):
            events.append(event)

    try:
        pulling = asyncio.ensure_future(follow())
        await wait_until_async(lambda: pulling.done() or any("trying again" in e.message
                                                             for e in events),
                               timeout=60, what="the pull to be tried again")
        assert not pulling.done(), pulling.exception()
        registry_server.start(settings, log=lambda _: None)
        await asyncio.wait_for(pulling, 120)  # raises LaunchError if it gave up
        assert await pulls.present(name)
        assert events[-1].message.startswith("Pulled the image")
    finally:
        await pulls.aclose()
