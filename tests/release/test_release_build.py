"""`bindery release` builds the wheel of the committed state, named and baked with the derived version."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from bindery.release.build import ReleaseError, release
from bindery.artifacts.store import FolderStore
from bindery.versioning import BUILD_INFO_NAME, PACKAGE_DIR, version_of

from .conftest import Repo

ROOT = PACKAGE_DIR.parent
COPIED = ("setup.py", "bindery/__init__.py", "bindery/release/__init__.py", "bindery/versioning.py")


@pytest.fixture
def mini_checkout(tmp_path: Path) -> Repo:
    """A checkout with bindery's real build files (setup.py, pyproject, version module) and little else."""
    repo = Repo(tmp_path / "mini")
    files = {name: (ROOT / name).read_text() for name in COPIED}
    pyproject = (ROOT / "pyproject.toml").read_text()
    files["pyproject.toml"] = pyproject.split("[project.optional-dependencies]")[0].replace(
        "[project]", "[project]", 1) + "\n[tool.setuptools.packages.find]\ninclude = [\"bindery*\"]\n"
    files[".gitignore"] = f"bindery/{BUILD_INFO_NAME}\nbuild/\n*.egg-info/\n"
    repo.commit("package", files)
    repo.commit("docs only", {"README.md": "docs\n"})
    return repo


def test_release_builds_wheel_with_the_version_baked_in(mini_checkout: Repo, tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "artifacts")
    expected = version_of(mini_checkout.path)
    mini_checkout.write({"bindery/uncommitted_outside.txt": ""})  # untracked, not a .py, but still in the package
    with pytest.raises(ReleaseError, match="uncommitted changes"):
        release(mini_checkout.path, store)
    (mini_checkout.path / "bindery/uncommitted_outside.txt").unlink()

    result = release(mini_checkout.path, store)
    artifact = result.artifact
    assert not result.already_there
    assert artifact.version == expected
    assert artifact.commit == mini_checkout.git("log", "-1", "--format=%H", "--", "bindery", "pyproject.toml",
                                                "setup.py")
    with zipfile.ZipFile(artifact.location) as wheel:
        info = json.loads(wheel.read(f"bindery/{BUILD_INFO_NAME}"))
        metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        assert f"Version: {expected}" in wheel.read(metadata).decode()
    assert info["version"] == expected and info["commit"] == artifact.commit
    assert store.find(expected) == artifact

    again = release(mini_checkout.path, store)
    assert again.already_there and again.artifact == artifact
