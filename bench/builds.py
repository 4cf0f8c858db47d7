"""Builds of real Binder repository kinds with bindery's mirror buildpacks, on a stack of its own.

Prints a table: kind → fresh build time, image size (and what it adds to the base image), rebuild
time after a commit that changes only a notebook. Then a fresh build of a requirements.txt with
numpy, pandas and matplotlib pinned, installed with uv vs with pip in the same run (each with its
own, never-cached install layer), and their ratio.

Builds run the way the build queue runs them (bindery.builds.runner: repo2docker, the Docker API of
the build engine, push to the registry), from a real git daemon.
Usage: .venv/bin/python bench/builds.py [--skip-kinds] [--skip-installers]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import docker
from common import bench_stack

from bindery.builds.buildpack_mode import BuildpacksChooser
from bindery.builds.queue import BuildJob
from bindery.builds.runner import engine_executor, run_build
from bindery.settings import Settings
from bindery.stack import base_image

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'
SCIENCE = "numpy==2.1.3\npandas==2.2.3\nmatplotlib==3.9.2\n"
KINDS = {
    "no configuration": {},
    "requirements.txt": {"requirements.txt": "tabulate==0.9.0\nrequests==2.32.3\n"},
    "setup.py": {"setup.py": "from setuptools import setup\nsetup(name='b', version='1', "
                             "py_modules=['b'], install_requires=['tabulate'])\n", "b.py": ""},
    "pyproject.toml": {"pyproject.toml": "[build-system]\nrequires = ['setuptools>=61']\n"
                       "build-backend = 'setuptools.build_meta'\n[project]\nname = 'p'\n"
                       "version = '1'\ndependencies = ['tabulate==0.9.0']\n", "p.py": ""},
    "Pipfile": {"Pipfile": '[packages]\ntabulate = "==0.9.0"\n'},
    "apt.txt": {"apt.txt": "jq\n"},
    "postBuild": {"postBuild": "#!/bin/bash\necho hi > ~/made.txt\n"},
    "runtime.txt python-3.13 (trixie kernel)": {"runtime.txt": "python-3.13\n",
                                                "requirements.txt": "tabulate==0.9.0\n"},
    "requirements (numpy, pandas, matplotlib)": {"requirements.txt": SCIENCE},
}


async def build(settings: Settings, url: str, commit: str | None, image: str) -> tuple[float, str]:
    job = BuildJob(image=image, repo=url, commit=commit, source=url)
    log: list[str] = []
    start = time.perf_counter()
    async for event in run_build(settings, BuildpacksChooser.from_settings(settings),
                                 engine_executor(settings), job, {}):
        log.append(event.message)
    return time.perf_counter() - start, "".join(log)


def size_mb(settings: Settings, image: str) -> float:
    client = docker.DockerClient(base_url=settings.build_socket, timeout=60)
    try:
        return client.images.get(image).attrs["Size"] / 1e6
    finally:
        client.close()


async def kinds_table(settings: Settings, git) -> None:
    base: float | None = None  # in the build store once the first build pulled it
    print(f"\n{'kind':42} {'build s':>8} {'size MB':>8} {'+base MB':>9} {'rebuild s':>10}")
    for kind, files in KINDS.items():
        path, url = git.create("bench", {**files, "index.ipynb": NOTEBOOK})
        image = f"{settings.registry.host}/bindery/bench-{uuid.uuid4().hex[:8]}"
        fresh, _ = await build(settings, url, None, image + ":1")
        size = size_mb(settings, image + ":1")
        base = base if base is not None else size_mb(settings, base_image.image_name(settings))
        commit = git.commit(git.root / path, {"index.ipynb": NOTEBOOK.replace("[]", "[ ]")}, "nb")
        rebuild, log = await build(settings, url, commit, image + ":2")
        cached = "" if "Using cache" in log else "  (no cache hit!)"
        print(f"{kind:42} {fresh:8.1f} {size:8.1f} {size - base:9.1f} {rebuild:10.1f}{cached}",
              flush=True)
    print(f"(base image: {base:.0f} MB)")


async def installers(settings: Settings, git) -> None:
    print("\nfresh build, requirements.txt with numpy, pandas, matplotlib pinned:")
    seconds = {}
    for installer in ("pip", "uv"):
        # a unique comment: the install layer is built, not taken from the cache
        files = {"requirements.txt": f"# {uuid.uuid4().hex}\n{SCIENCE}"}
        _, url = git.create(f"science-{installer}", files)
        configured = settings.model_copy(update={"python_installer": installer})
        image = f"{settings.registry.host}/bindery/bench-{installer}-{uuid.uuid4().hex[:8]}:1"
        seconds[installer], _ = await build(configured, url, None, image)
        print(f"  {installer:3}: {seconds[installer]:6.1f} s", flush=True)
    print(f"  pip / uv: {seconds['pip'] / seconds['uv']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-kinds", action="store_true")
    parser.add_argument("--skip-installers", action="store_true")
    args = parser.parse_args()
    with bench_stack(buildpacks="mirror") as (settings, git):
        if not args.skip_kinds:
            asyncio.run(kinds_table(settings, git))
        if not args.skip_installers:
            asyncio.run(installers(settings, git))


if __name__ == "__main__":
    main()
