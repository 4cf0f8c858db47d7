"""`bindery release --images`: bindery's own image and the repo2docker build image, tagged from the version, pushed.

Why from the released wheel: the image must hold exactly the artifact a version names (the wheel in the artifact
store, checksum and all), never the working tree. Both images are built FROM the stack's base image (made locally,
trusts the host's CA certificates; nothing from Docker Hub) on the build engine, through the one Docker-API client
factory (bindery/engine_clients.py), and tagged ``image_tag(version)`` (bindery/artifacts/tags.py: ``+`` becomes ``-``).

After each push the manifest is read back from the registry (both manifest kinds in Accept, see registry.py): the
push is only believed when the registry serves the tag. Idempotent: bindery's image carries a content key label
(the wheel's checksum, this Containerfile, the base image's recipe); when the registry already serves the tag with
that key nothing is built. The build image is the stack's own (bindery/stack/builder_image.py, same recipe), pushed
under the release tag unless the registry already holds that very image (same config digest).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import docker

from bindery import datadir, http_clients
from bindery.engine_clients import docker_client
from bindery.image_names import split_image
from bindery.registry_client import MANIFEST_HEADERS, RegistryAuth, manifest_url
from bindery.artifacts.store import Artifact
from bindery.artifacts.tags import image_tag
from bindery.settings import Settings
from bindery.stack import base_image, builder_image

CONTAINERFILE = Path(__file__).parent / "image" / "Containerfile"
CONTENT_LABEL = "org.bindery.release.content"
BINDERY_NAME = "bindery"
BUILDER_NAME = "repo2docker"
ENGINE_TIMEOUT = 1800.0  # one engine call: a build streams its log, but pip can be quiet for minutes
REGISTRY_TIMEOUT = 30.0


class ImageError(RuntimeError):
    """An image could not be built, pushed or confirmed; the message says which and why."""


@dataclass(frozen=True)
class PushedImage:
    name: str  # host/prefix/name:tag
    digest: str  # the manifest digest the registry serves
    compressed_bytes: int  # config + layers, as stored in the registry
    image_bytes: int  # unpacked size on the engine
    source: str  # "built" | "pushed" | "already in registry"
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_prefix(settings: Settings) -> str:
    """Where releases push when no --registry is given: the stack's registry, apart from built repositories."""
    return f"{settings.registry.host}/bindery-release"


def registry_base(settings: Settings, host: str) -> str:
    """The HTTP API of the registry named ``host`` in image names (the stack's own: its configured URL)."""
    return settings.registry.url if host == settings.registry.host else f"https://{host}"


def read_manifest(settings: Settings, image: str) -> dict[str, Any] | None:
    """What the registry serves for ``image``: digest, config digest and stored size; None when it has no such tag."""
    host, repo, _ = split_image(image)
    base = registry_base(settings, host)
    # the stack's registry answers only with a token (anonymous ones may read): its pusher reads here
    credential = datadir.registry_credential(settings) if host == settings.registry.host else None
    with http_clients.client(timeout=REGISTRY_TIMEOUT) as http:
        http.auth = RegistryAuth(credential)
        r = http.get(manifest_url(base, image), headers=MANIFEST_HEADERS)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        manifest, digest = r.json(), r.headers.get("Docker-Content-Digest", "")
        if "manifests" in manifest:  # an index: the image of this machine's platform is the first
            first = manifest["manifests"][0]["digest"]
            r = http.get(f"{base}/v2/{repo}/manifests/{first}", headers=MANIFEST_HEADERS)
            r.raise_for_status()
            manifest = r.json()
        config = manifest["config"]["digest"]
        blob = http.get(f"{base}/v2/{repo}/blobs/{config}")
        blob.raise_for_status()
        labels = (blob.json().get("config") or {}).get("Labels") or {}
    size = manifest["config"].get("size", 0) + sum(layer.get("size", 0) for layer in manifest.get("layers", []))
    return {"digest": digest, "config": config, "compressed_bytes": size, "labels": labels}


def content_key(settings: Settings, artifact: Artifact) -> str:
    """What bindery's image is made of: the wheel, the Containerfile, the base image (its recipe or name)."""
    base = settings.stack.base_image or base_image.recipe_hash()
    text = "\n".join([artifact.sha256, hashlib.sha256(CONTAINERFILE.read_bytes()).hexdigest(), base,
                      *sorted(_build_args(settings).values())])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _build_args(settings: Settings) -> dict[str, str]:
    return {"BASE": base_image.image_name(settings), "REPO2DOCKER_VERSION": builder_image.REPO2DOCKER_VERSION,
            "CHARDET_SPEC": builder_image.CHARDET_SPEC}


def _engine(settings: Settings) -> docker.DockerClient:
    return docker_client(settings.build_socket, ENGINE_TIMEOUT)


def _push(settings: Settings, client: docker.DockerClient, name: str) -> None:
    repository, _, tag = name.rpartition(":")
    host, _, _ = split_image(name)
    # the stack's registry takes pushes only with its pusher credential; other registries: the engine's own login
    credential = datadir.registry_credential(settings) if host == settings.registry.host else None
    auth = {"username": credential[0], "password": credential[1]} if credential else None
    for line in client.images.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
        if isinstance(line, dict) and line.get("error"):
            raise ImageError(f"pushing {name} failed: {line['error']}")


def _confirmed(settings: Settings, name: str, client: docker.DockerClient, source: str, t0: float,
               key: str | None = None) -> PushedImage:
    """Read the pushed tag back from the registry; the release only counts once the registry serves it."""
    served = read_manifest(settings, name)
    if served is None:
        raise ImageError(f"the registry does not serve {name} after the push")
    if key is not None and served["labels"].get(CONTENT_LABEL) != key:
        raise ImageError(f"the registry serves {name} with content {served['labels'].get(CONTENT_LABEL)!r}, "
                         f"not the {key!r} just pushed")
    local = client.images.get(name).attrs.get("Size", 0) if source != "already in registry" else 0
    return PushedImage(name, served["digest"], served["compressed_bytes"], local, source,
                       round(time.monotonic() - t0, 1))


def bindery_image(settings: Settings, artifact: Artifact, prefix: str, *, force: bool = False,
                  log: Callable[[str], None] = print) -> PushedImage:
    """bindery's image of ``artifact`` (its wheel, exact version), pushed as ``<prefix>/bindery:<tag>``."""
    t0 = time.monotonic()
    name = f"{prefix}/{BINDERY_NAME}:{image_tag(artifact.version)}"
    key = content_key(settings, artifact)
    served = read_manifest(settings, name)
    if served is not None and served["labels"].get(CONTENT_LABEL) == key:
        return PushedImage(name, served["digest"], served["compressed_bytes"], 0, "already in registry",
                           round(time.monotonic() - t0, 1))
    if served is not None and not force:
        raise ImageError(f"{name} is in the registry with other content (key {served['labels'].get(CONTENT_LABEL)!r},"
                         f" this release {key!r}); a released tag is not replaced unless --force")
    client = _engine(settings)
    with tempfile.TemporaryDirectory(prefix="bindery-image-") as tmp:
        ctx = Path(tmp)
        (ctx / "wheel").mkdir()
        shutil.copy(artifact.location, ctx / "wheel" / Path(artifact.location).name)
        shutil.copy(CONTAINERFILE, ctx / "Containerfile")
        log(f"  building {name} FROM {base_image.image_name(settings)} (pip install of the wheel and repo2docker)")
        labels = {CONTENT_LABEL: key, "org.opencontainers.image.version": artifact.version,
                  "org.opencontainers.image.revision": artifact.commit,
                  "org.opencontainers.image.title": "bindery"}
        try:
            client.images.build(path=str(ctx), dockerfile="Containerfile", tag=name, rm=True, forcerm=True,
                                pull=False, labels=labels, buildargs=_build_args(settings))
        except docker.errors.BuildError as exc:
            tail = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log)[-3000:]
            raise ImageError(f"building {name} failed: {exc.msg}\n{tail}") from None
    log(f"  pushing {name}")
    _push(settings, client, name)
    return _confirmed(settings, name, client, "built", t0, key)


def builder_image_release(settings: Settings, version: str, prefix: str,
                          log: Callable[[str], None] = print) -> PushedImage:
    """The repo2docker build image (the stack's recipe, bindery/stack/builder_image.py) as
    ``<prefix>/repo2docker:<tag>``."""
    t0 = time.monotonic()
    name = f"{prefix}/{BUILDER_NAME}:{image_tag(version)}"
    local_name = builder_image.ensure(settings, log)["image"]
    client = _engine(settings)
    local = client.images.get(local_name)
    served = read_manifest(settings, name)
    if served is not None and served["config"] == local.id:
        return PushedImage(name, served["digest"], served["compressed_bytes"], 0, "already in registry",
                           round(time.monotonic() - t0, 1))
    repository, _, tag = name.rpartition(":")
    local.tag(repository, tag)
    log(f"  pushing {name}")
    _push(settings, client, name)
    return _confirmed(settings, name, client, "pushed", t0)


def release_images(settings: Settings, artifact: Artifact, prefix: str | None = None, *, force: bool = False,
                   log: Callable[[str], None] = print) -> list[PushedImage]:
    prefix = (prefix or default_prefix(settings)).rstrip("/")
    return [bindery_image(settings, artifact, prefix, force=force, log=log),
            builder_image_release(settings, artifact.version, prefix, log=log)]
