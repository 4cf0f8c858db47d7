"""The repositories people have (tests/builds/test_repositories_people_have.py's kinds: conda
environments, old pins, ...) built with bindery's mirror buildpacks on a stack of its own.

Prints, per kind: fresh build time, image size and what it adds to the base image, and the notice
the build left in the image (what a launch of it shows the person).

Builds run the way the build queue runs them (bindery.builds.runner: repo2docker, the Docker API of
the build engine, push to the registry), from a real git daemon, one after the other.
Usage: .venv/bin/python bench/repositories.py [KIND ...]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker
from common import bench_stack

from bindery.builds.buildpack_mode import BuildpacksChooser
from bindery.builds.buildpacks.build_notice import NOTICE_LABEL, read_label
from bindery.builds.queue import BuildJob
from bindery.builds.runner import engine_executor, run_build
from bindery.events import LaunchError
from bindery.settings import Settings
from bindery.stack import base_image
from tests.builds.test_repositories_people_have import KINDS, lockfiles


async def build(settings: Settings, url: str, image: str) -> tuple[float, str]:
    job = BuildJob(image=image, repo=url, commit=None, source=url)
    start = time.perf_counter()
    try:
        async for _ in run_build(settings, BuildpacksChooser.from_settings(settings),
                                 engine_executor(settings), job, {}):
            pass
    except LaunchError as exc:
        return time.perf_counter() - start, exc.message
    return time.perf_counter() - start, ""


def image_facts(settings: Settings, image: str) -> tuple[float, list[str]]:
    """(size in MB, notice sentences) of an image in the build store."""
    client = docker.DockerClient(base_url=settings.build_socket, timeout=60)
    try:
        attrs = client.images.get(image).attrs
    finally:
        client.close()
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return attrs["Size"] / 1e6, read_label(labels.get(NOTICE_LABEL))


async def table(settings: Settings, git, kinds: list[str]) -> None:
    base: float | None = None
    with tempfile.TemporaryDirectory() as tmp:
        locks = lockfiles(Path(tmp))  # uv.lock and pylock.toml, made by uv as the test makes them
    print(f"\n{'kind':28} {'build s':>8} {'size MB':>8} {'+base MB':>9}  notice")
    for kind in kinds:
        lock = KINDS[kind].lock
        _, url = git.create("bench", {**KINDS[kind].files, **({lock: locks[lock]} if lock else {})})
        image = f"{settings.registry.host}/bindery/bench-{uuid.uuid4().hex[:8]}:1"
        seconds, error = await build(settings, url, image)
        if error:
            print(f"{kind:28} {seconds:8.1f}  FAILED: {error}", flush=True)
            continue
        size, notice = image_facts(settings, image)
        if base is None:  # in the build store once the first build pulled it
            base = image_facts(settings, base_image.image_name(settings))[0]
        print(f"{kind:28} {seconds:8.1f} {size:8.1f} {size - base:9.1f}  {len(notice)} sentences",
              flush=True)
        for sentence in notice:
            print(f"{'':28}   - {sentence}", flush=True)
    print(f"(base image: {base or 0:.0f} MB)")


def main() -> None:
    kinds = sys.argv[1:] or list(KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        sys.exit(f"unknown kinds {unknown}; known: {list(KINDS)}")
    with bench_stack(buildpacks="mirror") as (settings, git):
        asyncio.run(table(settings, git, kinds))


if __name__ == "__main__":
    main()
