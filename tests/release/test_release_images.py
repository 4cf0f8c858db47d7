"""`bindery release --images` against the session stack: real builds on its build engine, pushed to its registry."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from packaging.version import Version

from bindery.engine_clients import docker_client
from bindery.release.build import release
from bindery.release.release_images import CONTENT_LABEL, bindery_image, builder_image_release, read_manifest
from bindery.artifacts.store import FolderStore
from bindery.artifacts.tags import image_tag
from bindery.versioning import PACKAGE_DIR, version_of
from bindery.settings import Settings
from bindery.stack import podman
from bindery.stack.builder_image import REPO2DOCKER_VERSION

pytestmark = pytest.mark.stack
ROOT = PACKAGE_DIR.parent


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The wheel of this checkout's HEAD (a clean clone, so uncommitted edits never leak in), in a store."""
    clone = tmp_path_factory.mktemp("clone") / "bindery"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=120)
    store = FolderStore(tmp_path_factory.mktemp("artifacts"))
    return release(clone, store).artifact, version_of(clone), clone


def output_of(settings: Settings, image: str, *command: str) -> str:
    """What ``command`` prints in ``image`` on the build engine (bounded). Not the API's
    containers.run: it follows the log after the container is removed, and podman 4.3 can then
    keep that stream open forever (seen: a 15-minute hang)."""
    done = podman.run(settings, "build", ["run", "--rm", "--network=none", image, *command], timeout=120)
    return done.stdout.strip()


def test_bindery_image_from_the_released_wheel(stack: Settings, released) -> None:  # noqa: ANN001
    artifact, version, _ = released
    prefix = f"{stack.registry.host}/release-test"
    logged: list[str] = []
    image = bindery_image(stack, artifact, prefix, log=logged.append)
    assert image.name == f"{prefix}/bindery:{image_tag(version)}" and "+" not in image.name
    assert image.source == "built" and image.digest.startswith("sha256:")
    served = read_manifest(stack, image.name)  # read back from the registry with the git-derived tag
    assert served is not None and served["digest"] == image.digest
    assert served["labels"][CONTENT_LABEL] and served["labels"]["org.opencontainers.image.version"] == version
    engine = docker_client(stack.build_socket, 120)
    assert output_of(stack, image.name, "bindery", "version") == version
    assert output_of(stack, image.name, "id", "-u") == "10001"  # bindery serve runs as a non-root user
    assert engine.images.get(image.name).attrs["Config"]["Cmd"] == ["bindery", "serve"]
    print(f"\nbindery image: {image.image_bytes / 1e6:.0f} MB unpacked, {image.compressed_bytes / 1e6:.0f} MB "
          f"in the registry, built and pushed in {image.seconds:g} s")

    again = bindery_image(stack, artifact, prefix, log=logged.append)  # same content: nothing is built
    assert again.source == "already in registry" and again.digest == image.digest
    assert sum("building" in line for line in logged) == 1


def test_builder_image_pushed_under_the_release_tag(stack: Settings, released) -> None:  # noqa: ANN001
    artifact, version, _ = released
    prefix = f"{stack.registry.host}/release-test"
    image = builder_image_release(stack, version, prefix, log=lambda m: None)
    assert image.name == f"{prefix}/repo2docker:{image_tag(version)}"
    served = read_manifest(stack, image.name)
    assert served is not None and served["digest"] == image.digest
    out = output_of(stack, image.name, "repo2docker", "--version")
    assert Version(out) == Version(REPO2DOCKER_VERSION)  # repo2docker prints 2024.07.0
    print(f"\nbuild image: {image.compressed_bytes / 1e6:.0f} MB in the registry, pushed in {image.seconds:g} s")
    again = builder_image_release(stack, version, prefix, log=lambda m: None)
    assert again.source == "already in registry" and again.digest == image.digest


def test_release_cli_images_and_chart_idempotent(stack: Settings, released, tmp_path: Path) -> None:  # noqa: ANN001
    """`bindery release --images --chart` as a person runs it: both images already pushed above are not rebuilt."""
    import json

    from tests.conftest import run_cli

    artifact, version, clone = released
    store = Path(artifact.location).parent
    chart = Path(__file__).parents[1] / "deploy" / "tinychart"
    proc = run_cli(stack, "release", "--repo", str(clone), "--store", str(store), "--images", "--registry",
                   f"{stack.registry.host}/release-test", "--chart", str(chart), "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["already_there"] and out["version"] == version
    assert [i["source"] for i in out["images"]] == ["already in registry", "already in registry"]
    assert out["chart"]["kind"] == "chart" and out["chart"]["filename"].endswith(".tgz")
    bad = run_cli(stack, "release", "--repo", str(clone), "--store", str(store), "--chart", str(tmp_path))
    assert bad.returncode == 1 and "not a chart folder" in bad.stderr and "Traceback" not in bad.stderr
