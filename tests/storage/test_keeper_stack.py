"""The storage keeper on the real stack: launches record their images, an unused image is evicted
from the run store over budget (a running server's never), and its next launch pulls it again."""

from __future__ import annotations

import time

import httpx

from bindery import datadir
from bindery.launches.hub_api import Hub
from bindery.state import open_store
from bindery.storage.keeper import USED, StorageKeeper
from bindery.metrics import Metrics
from bindery.registry_client import MANIFEST_HEADERS, RegistryAuth, manifest_url, repository_of
from bindery.storage.registry_cleaner import RegistryCleaner
from tests.streams import collect, git_spec, phases, pulled


async def test_an_evicted_image_relaunches_and_a_running_servers_image_stays(stack, git_repo_factory):
    _, url_a = git_repo_factory("keeper-a", "RUN echo keeper-a")
    _, url_b = git_repo_factory("keeper-b", "RUN echo keeper-b")
    first = await collect(stack, "git", git_spec(url_a, "main"))
    running = await collect(stack, "git", git_spec(url_b, "main"))
    assert first[-1].phase == "ready" and running[-1].phase == "ready", (first[-1], running[-1])
    image_a, image_b = first[-1].data()["image"], running[-1].data()["image"]
    # A's server goes (culled, or its person left); B's keeps running.
    hub = Hub(datadir.hub_api(stack), datadir.hub_token(stack), 10)
    try:
        user_a = first[-1].data()["user"]
        await hub.stop_server(user_a)
        await hub.delete_user(user_a)
    finally:
        await hub.aclose()

    store = open_store(stack)
    try:
        assert {image_a, image_b} <= set(await store.keys(USED))  # the launches said so
        # A budget the store is far over, and no grace: everything no container uses may go.
        settings = stack.model_copy(update={"run_store_bytes": 1, "store_clean_grace_seconds": 0})
        metrics = Metrics()

        async def pool_wants_a() -> list[str]:  # as WarmImages.wanted() names a pool's image
            return [image_a]

        await store.delete("storage-lease", "run")  # the service's own keeper holds it otherwise
        # While a warm pool wants A (even with no server of it), A stays.
        keeper = StorageKeeper(settings, store, Metrics(), owner="test-keeper", wanted=pool_wants_a)
        kept = await keeper.clean("run")
        assert kept is not None and not any(n.startswith(repository_of(image_a)) for n in kept.removed)
        assert pulled(stack, image_a)
        keeper = StorageKeeper(settings, store, metrics, owner="test-keeper")
        result = await keeper.clean("run")
    finally:
        await store.delete("storage-lease", "run")
        await store.aclose()
    repo_a, repo_b = repository_of(image_a), repository_of(image_b)
    assert result is not None and any(n.startswith(repo_a) for n in result.removed), result
    assert not any(n.startswith(repo_b) for n in result.removed)  # its server runs
    assert not pulled(stack, image_a) and pulled(stack, image_b)
    assert result.reclaimed > 0
    assert metrics.store_reclaimed.labels("run")._value.get() == result.reclaimed
    assert metrics.store_bytes.labels("run")._value.get() == result.after

    # The next launch of A does not notice, except that the run side pulls it again.
    again = await collect(stack, "git", git_spec(url_a, "main"))
    assert again[-1].phase == "ready", again[-1]
    assert "building" not in phases(again)  # still in the registry: no rebuild
    assert pulled(stack, image_a)
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{stack.service.web_url}metrics")).text
    assert 'bindery_store_budget_bytes{store="run"}' in text
    assert 'bindery_store_budget_bytes{store="registry"}' in text  # the service keeps it too


async def test_an_image_deleted_from_the_registry_is_rebuilt_by_its_next_launch(stack, git_repo_factory):
    _, url = git_repo_factory("keeper-registry", "RUN echo keeper-registry")
    first = await collect(stack, "git", git_spec(url, "main"))
    assert first[-1].phase == "ready", first[-1]
    image, user = first[-1].data()["image"], first[-1].data()["user"]
    hub = Hub(datadir.hub_api(stack), datadir.hub_token(stack), 10)
    try:  # its server goes: nothing uses the image any more
        await hub.stop_server(user)
        await hub.delete_user(user)
    finally:
        await hub.aclose()
    registry = stack.registry
    store = open_store(stack)
    try:
        # Everything but this image was launched just now (other tests' images stay), and the
        # budget is far exceeded: the pass deletes exactly this image and collects its blobs.
        settings = stack.model_copy(update={"registry_bytes": 1, "store_clean_grace_seconds": 600})
        metrics = Metrics()
        keeper = StorageKeeper(settings, store, metrics, owner="test-keeper")
        with httpx.Client(timeout=10, auth=RegistryAuth(datadir.registry_credential(stack))) as client:
            listing = RegistryCleaner(client, registry.url, registry.host, registry.image_prefix,
                                      datadir.StackPaths.of(stack).registry_data,
                                      keeper.budgets["registry"], 600)
            for manifest in listing.manifests():
                names = manifest.names(registry.host)
                for name in names:  # its tag and the digest launched: an hour ago
                    if image in names:
                        await store.put(USED, name, {"at": time.time() - 3600}, ttl=3600)
                    else:
                        await keeper.used(name)
            await store.delete("storage-lease", "registry")
            result = await keeper.clean("registry")
            assert client.head(manifest_url(registry.url, image),
                               headers=MANIFEST_HEADERS).status_code == 404
    finally:
        await store.delete("storage-lease", "registry")
        await store.aclose()
    assert result is not None and result.removed == [image], result
    assert result.reclaimed > 0 and result.collect_seconds > 0
    assert metrics.store_bytes.labels("registry")._value.get() == result.after
    print(f"stack registry: {result.before} bytes before, {result.after} after, collection "
          f"{result.collect_seconds:.2f} s")

    again = await collect(stack, "git", git_spec(url, "main"))
    assert again[-1].phase == "ready", again[-1]
    assert "building" in phases(again)  # gone from the registry: built again, then launched
