"""A compressed soak of an image store under a small budget, on real engines and a real registry.

Two dozen "repositories" each bring an image with its own incompressible layer, made on a build
engine, pushed to the registry and pulled into the run engine's store (as a first launch does);
every few steps an older one is launched again (pulled again if it was evicted); a cleaning pass
follows each arrival, as the keeper's period would.
The store must stay under its budget throughout, evict least recently used first, and never touch
the protected base image or an image a container uses.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Iterator

import pytest

from tests.conftest import free_port

from bindery import datadir
from bindery.datadir import StackPaths
from bindery.engine_clients import docker_client
from bindery.settings import Settings
from bindery.stack import podman, registry_server
from bindery.storage.disk_use import Budget, folder_bytes
from bindery.storage.image_cleaner import ImageCleaner

MB = 1024 * 1024
LAYER = 6 * MB  # each repository's own layer
REPOS = 24


@pytest.fixture(scope="module")
def engines(tmp_path_factory) -> Iterator[tuple[Settings, object, object]]:
    """(settings, build engine client, run engine client) with a registry between them."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("soak"), registry_port=free_port())
    registry_server.start(settings)
    podman.start(settings, "build")
    podman.start(settings, "run")
    build = docker_client(settings.build_socket, 60)
    run = docker_client(settings.run_socket, 60)
    try:
        yield settings, build, run
    finally:
        build.close()
        run.close()
        podman.stop(settings, "run")
        podman.stop(settings, "build")
        registry_server.stop(settings)


def push_image(build, name: str, size: int, settings: Settings) -> None:
    """An image of one layer holding ``size`` random bytes (nothing to share), in the registry."""
    data = os.urandom(size)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(f"layer-{name.rpartition('/')[2]}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    repository, _, tag = name.rpartition(":")
    answer = build.api.import_image_from_data(buf.getvalue())
    image_id = json.loads(answer.strip().splitlines()[-1])["id"]
    build.api.tag(image_id, repository, tag)  # podman's import ignores the tag it is given
    user, password = datadir.registry_credential(settings)  # only bindery's pusher may push
    answer = build.images.push(repository, tag, auth_config={"username": user, "password": password})
    assert '"error"' not in answer, answer


def pull(run, name: str) -> None:
    repository, _, tag = name.rpartition(":")
    run.images.pull(repository, tag)  # raises when the registry does not have it


def tags(client) -> set[str]:
    return {t for image in client.api.images() for t in image.get("RepoTags") or ()}


def test_a_store_under_a_small_budget_keeps_itself_there(engines, capsys):
    settings, build, client = engines
    PREFIX = f"{settings.registry.host}/bindery/"
    folder = StackPaths.of(settings).store("run")
    base = f"{PREFIX}base:protected"
    push_image(build, base, 2 * LAYER, settings)  # the stack's base: never removed, whatever its age
    pull(client, base)
    pinned = f"{PREFIX}repo-in-use:c0"
    push_image(build, pinned, LAYER, settings)
    pull(client, pinned)
    client.api.create_container(pinned, command=["/nothing"])  # a server of it exists
    empty = folder_bytes(folder)
    budget = Budget("run", empty + 8 * LAYER, empty + 7 * LAYER, empty + 4 * LAYER)
    cleaner = ImageCleaner("run", client, folder, budget, PREFIX, {base}, grace=0)

    used_at: dict[str, float] = {}
    clock = time.time() - 90 * 86400  # compressed months: an hour between two launches
    peak, reclaimed, removed, cleaning = 0, 0, [], 0.0
    relaunched, repulled = [], 0
    for i in range(REPOS):
        image = f"{PREFIX}repo-{i}:c{i}"
        push_image(build, image, LAYER, settings)  # built...
        pull(client, image)  # ...and launched: the run side pulls it
        clock += 3600
        used_at[image] = clock
        if i % 4 == 3 and i >= 10:  # an older repository is launched again: recently used now
            back = 2 if i % 8 == 3 else 10  # a recent one (still there) or an evicted one
            again = f"{PREFIX}repo-{i - back}:c{i - back}"
            if again not in tags(client):  # evicted: the relaunch pulls it again
                pull(client, again)
                repulled += 1
            clock += 60
            used_at[again] = clock
            relaunched.append(again)
        result = cleaner.clean(used_at)
        peak = max(peak, result.before)
        reclaimed += result.reclaimed
        removed += result.removed
        cleaning += result.seconds
        assert result.after <= budget.high, (i, result)
    present = tags(client)
    written = (REPOS + repulled) * LAYER
    with capsys.disabled():
        print(f"\nsoak: {REPOS} images + {len(relaunched)} relaunches ({repulled} pulled again), "
              f"{written / MB:.0f} MB "
              f"written, {reclaimed / MB:.0f} MB reclaimed in {len(removed)} removals, peak "
              f"{peak / MB:.1f} MB of a {budget.bytes / MB:.1f} MB budget (high "
              f"{budget.high / MB:.1f}), {cleaning:.2f} s cleaning")
    assert peak <= budget.bytes
    assert repulled > 0  # evicted images were relaunched (pulled again from the registry)
    assert reclaimed >= written - 8 * LAYER  # it really cleaned, not just stayed small
    assert base in present and pinned in present
    # Least recently used went first: what is kept is exactly the most recently used images.
    kept = {t for t in present if t not in (base, pinned)}
    newest = sorted(used_at, key=used_at.get, reverse=True)[:len(kept)]
    assert kept == set(newest) and len(kept) >= 4
    assert relaunched[-1] in present and f"{PREFIX}repo-{REPOS - 1}:c{REPOS - 1}" in present


def test_a_recently_used_image_is_kept_within_the_grace(engines):
    settings, build, client = engines
    PREFIX = f"{settings.registry.host}/bindery/"
    folder = StackPaths.of(settings).store("run")
    image = f"{PREFIX}fresh:c1"
    push_image(build, image, LAYER, settings)
    pull(client, image)
    used = folder_bytes(folder)
    budget = Budget("run", 1, 0, 0)  # everything is over budget
    kept = ImageCleaner("run", client, folder, budget, PREFIX, set(), grace=600)
    result = kept.clean({image: time.time()})
    assert image in tags(client) and image not in result.removed
    assert result.before == used
    gone = ImageCleaner("run", client, folder, budget, PREFIX, set(), grace=0).clean({})
    assert image in gone.removed and image not in tags(client)
