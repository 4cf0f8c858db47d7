"""Building the release wheel of a checkout's committed state.

Why export first: the wheel must contain exactly the committed packaged files its version names, never a stray
uncommitted edit in the working tree. So the commit is exported with ``git archive`` into a temporary folder, the
version derived from git is baked in (``bindery/_build_info.json``; the export has no .git), and pip builds the wheel
from that folder.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bindery import process_runner
from bindery.artifacts.store import Artifact, ArtifactStore
from bindery.git_commands import GitError
from bindery.versioning import BUILD_INFO_NAME, explain

BUILD_TIMEOUT = 600.0


class ReleaseError(RuntimeError):
    """The release cannot be built; the message says why and what to do."""


@dataclass(frozen=True)
class Release:
    artifact: Artifact
    already_there: bool


def export_tree(repo: Path, commit: str, dest: Path) -> None:
    """Write the tree of ``commit`` into ``dest`` (git archive through a pipe, no shell)."""
    proc = process_runner.run(["git", "-C", str(repo), "archive", "--format=tar", commit], timeout=120, text=False)
    if proc.returncode != 0:
        raise ReleaseError(f"git archive {commit} failed: {proc.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        tar.extractall(dest, filter="data")


def build_wheel(repo: Path, out_dir: Path, *, timeout: float = BUILD_TIMEOUT) -> tuple[Path, dict]:
    """Build the wheel of ``repo``'s HEAD into ``out_dir``; return its path and the baked build info."""
    try:
        ex = explain(repo)
    except GitError as exc:
        raise ReleaseError(str(exc)) from None
    if ex.dirty:
        raise ReleaseError(
            f"uncommitted changes to packaged files ({', '.join(ex.dirty_paths[:10])}); commit them first, "
            "a release must be reproducible from its version"
        )
    info = {"version": ex.version, "commit": ex.commit, "subject": ex.subject, "count": ex.count}
    with tempfile.TemporaryDirectory(prefix="bindery-release-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        export_tree(repo, ex.head, src)
        (src / "bindery" / BUILD_INFO_NAME).write_text(json.dumps(info, indent=2) + "\n")
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
               "--wheel-dir", str(out_dir), str(src)]
        try:
            proc = process_runner.run(cmd, timeout=timeout)
        except process_runner.CommandTimeout:
            raise ReleaseError(f"wheel build did not finish within {timeout:g} s: {' '.join(cmd)}") from None
        if proc.returncode != 0:
            raise ReleaseError(f"wheel build failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    wheels = sorted(out_dir.glob("bindery-*.whl"))
    if len(wheels) != 1:
        raise ReleaseError(f"expected one bindery wheel in {out_dir}, found {[w.name for w in wheels]}")
    return wheels[0], info


def release(repo: Path, store: ArtifactStore, *, force: bool = False) -> Release:
    """Build the checkout's version into ``store`` unless it is there already (same version = same content)."""
    ex = explain(repo)
    existing = store.find(ex.version)
    if existing is not None and not force and not ex.dirty:
        return Release(existing, already_there=True)
    with tempfile.TemporaryDirectory(prefix="bindery-wheel-") as out:
        wheel, info = build_wheel(repo, Path(out))
        if wheel.name.split("-")[1].replace("_", "-") != info["version"].replace("_", "-"):
            raise ReleaseError(f"built {wheel.name}, but the version is {info['version']}")
        return Release(store.put(wheel, info["version"], info["commit"]), already_there=False)
