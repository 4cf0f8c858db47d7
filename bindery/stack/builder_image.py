"""The image builds run in: repo2docker from PyPI (pinned) + bindery's buildpacks, FROM the base.

Builds are containers on the build engine (bindery/builds/executors/engine.py), like BinderHub's build pods;
this module makes their image in the build store when it is missing. ``builder/Containerfile``
starts FROM the stack's base image (made locally, already trusting the host's CA certificates), so
nothing comes from Docker Hub. The tag is a recipe hash over the Containerfile, the pins, the base
image's own recipe and the buildpacks sources, so the image is rebuilt only when one changes. The
built image is kept as an OCI layout folder ``<cache_dir>/repo2docker-<hash>.oci``: other stacks on
the machine load it in seconds instead of pip-installing again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bindery import process_runner
from bindery.settings import Settings
from bindery.stack import base_image, podman
from bindery.datadir import StackPaths
from bindery.stack.process import StackError

HERE = Path(__file__).parent / "builder"
BUILD_DIR = Path(__file__).parents[1] / "builds"
REPO2DOCKER_VERSION = "2024.7.0"  # BinderHub's chart pins it; it builds through the Docker API
CHARDET_SPEC = "chardet>=5,<6"  # see pyproject.toml: repo2docker 2024.7.0 needs chardet 5
IN_IMAGE = ("repo2docker_config.py", "repo2docker_entry.py")  # bindery/builds files the image runs


def _sources() -> list[Path]:
    """Files of bindery's copied into the image: the buildpacks package, the config file and the
    entry that is the image's `repo2docker` command."""
    files = sorted(p for p in (BUILD_DIR / "buildpacks").rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts)
    return [*files, *(BUILD_DIR / file for file in IN_IMAGE)]


def recipe() -> dict:
    return {
        "containerfile": (HERE / "Containerfile").read_text(),
        "pins": [REPO2DOCKER_VERSION, CHARDET_SPEC],
        "base": base_image.recipe_hash(),
        "sources": {str(p.relative_to(BUILD_DIR)): hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in _sources()},
    }


def recipe_hash() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:12]


def image_name(settings: Settings) -> str:
    """The image build containers run (``settings.builds.build_image`` if set)."""
    return settings.builds.build_image or f"localhost/bindery/repo2docker:{recipe_hash()}"


def cache_dir(settings: Settings, h: str) -> Path:
    return Path(settings.stack.cache_dir).expanduser() / f"repo2docker-{h}.oci"


def _exists(settings: Settings, name: str) -> bool:
    return podman.run(settings, "build", ["image", "exists", name], check=False,
                      timeout=60).returncode == 0


def ensure(settings: Settings, log: Callable[[str], None] = print) -> dict:
    """Make sure the build image is in the build store: load it from the cache or build it."""
    name = image_name(settings)
    t0 = time.monotonic()
    if _exists(settings, name):
        return {"image": name, "source": "build-store", "seconds": 0.0}
    if settings.builds.build_image:
        raise StackError(f"build image {name} (settings.builds.build_image) is not in the build store")
    h = recipe_hash()
    cache = cache_dir(settings, h)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another stack may be building it: wait for its result
        if (cache / "index.json").is_file():
            _load(settings, cache, name)
            source = "cache"
        else:
            log(f"  building the build image {name} (pip install repo2docker, ~1 min)")
            _build(settings, name)
            tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            podman.run(settings, "build", ["push", "-q", name, f"oci:{tmp}:r2d"], timeout=900)
            shutil.rmtree(cache, ignore_errors=True)
            os.replace(tmp, cache)
            source = "built"
    seconds = round(time.monotonic() - t0, 1)
    log(f"  build image ready ({source}) in {seconds}s")
    return {"image": name, "source": source, "seconds": seconds}


def _load(settings: Settings, cache: Path, name: str) -> None:
    """Copy the cached OCI layout into the build store under `name` (skopeo: seconds)."""
    env = podman.write_configs(settings, StackPaths.of(settings), "build")
    res = process_runner.run(
        [shutil.which("skopeo") or "skopeo", "copy", "-q", f"oci:{cache}:r2d",
         f"containers-storage:{name}"], env=env, timeout=600)
    if res.returncode != 0:
        raise StackError(f"loading the build image from {cache} failed: {res.stderr.strip()}")


def _build(settings: Settings, name: str) -> None:
    base = base_image.image_name(settings)
    work = Path(tempfile.mkdtemp(prefix="r2d-", dir=Path(settings.stack.cache_dir).expanduser()))
    try:
        ctx = work / "context"
        target = ctx / "bindery" / "builds"
        target.mkdir(parents=True)
        (ctx / "bindery" / "__init__.py").write_text("")
        (target / "__init__.py").write_text("")
        shutil.copytree(BUILD_DIR / "buildpacks", target / "buildpacks",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for file in IN_IMAGE:
            shutil.copy(BUILD_DIR / file, target / file)
        shutil.copy(HERE / "Containerfile", ctx / "Containerfile")
        args = ["build", "-q", "--layers=false", "-f", str(ctx / "Containerfile"), "-t", name,
                "--build-arg", f"BASE={base}",
                "--build-arg", f"REPO2DOCKER_VERSION={REPO2DOCKER_VERSION}",
                "--build-arg", f"CHARDET_SPEC={CHARDET_SPEC}"]
        res = podman.run(settings, "build", [*args, str(ctx)], check=False, timeout=1800)
        if res.returncode != 0:
            tail = "\n".join((res.stdout + res.stderr).splitlines()[-20:])
            raise StackError(f"building the build image failed:\n{tail}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
