"""Merge a repository's files into a person's home without overwriting their own changes.

Runs inside a container of the server's image, with no network and no capabilities
(bindery/stack/spawner.py starts it as ``python3 -c <this file> [--manifest] SOURCE HOME``): SOURCE
is the image's home folder as built (the repository's files), HOME is the home volume. Standard
library only, so any Jupyter image can run it; importable for tests.

Two modes:

- merge (an existing home, before its server starts): the rules below;
- ``--manifest`` (a new home, after its server started): the run engine copied the image's home into
  the empty volume when the server's container mounted it, so the home holds exactly SOURCE; only
  the manifest is written, from SOURCE's files (never the home's: what the person changes in the
  meantime must not count as the repository's).

The rules are nbgitpuller's, judged against a manifest of what the repository put into the home last
time (path -> sha256, kept in the home as MANIFEST):

- a file the person changed is theirs: it is never overwritten;
- a file the person left as the repository put it gets the repository's new version;
- a file new in the repository is added;
- a file the person deleted comes back only when the repository changed it since;
- a file the person made that the repository now also has is kept under a new name
  (``name_<UTC time>.ext``) and the repository's file takes its place;
- a file the repository no longer has is removed only when the person left it unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path

MANIFEST = ".bindery-home.json"
# Never the repository's, never merged: the manifest itself and what a fresh file system holds.
SKIPPED = {MANIFEST, "lost+found"}
MAX_FILES = 100_000  # a home with more of the repository's files than this is refused, not walked


class MergeError(Exception):
    """The merge cannot be done (too many files, no space): the launch fails with this message."""


def file_hash(path: Path) -> str:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def repository_files(source: Path) -> dict[str, Path]:
    """Relative path -> file of every regular file and symlink under `source` (bounded)."""
    out: dict[str, Path] = {}
    for folder, dirs, files in os.walk(source):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()
                   and not (here == source and d in SKIPPED)]
        links = [d for d in os.listdir(here) if (here / d).is_symlink() and (here / d).is_dir()]
        for name in [*files, *links]:
            path = here / name
            relative = path.relative_to(source).as_posix()
            if relative in SKIPPED:
                continue
            if not (path.is_symlink() or stat.S_ISREG(path.lstat().st_mode)):
                continue  # sockets, fifos: nothing a repository brings
            out[relative] = path
            if len(out) > MAX_FILES:
                raise MergeError(f"the repository's home has more than {MAX_FILES} files")
    return out


def read_manifest(home: Path) -> dict[str, str]:
    try:
        data = json.loads((home / MANIFEST).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.get("files", {}).items()} if isinstance(data, dict) else {}


def write_manifest(home: Path, files: dict[str, str]) -> None:
    temporary = home / (MANIFEST + ".new")
    temporary.write_text(json.dumps({"files": files}, sort_keys=True))
    os.replace(temporary, home / MANIFEST)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    else:
        shutil.copy2(source, target, follow_symlinks=False)


def _kept_name(target: Path, now: float) -> Path:
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
    return target.with_name(f"{target.stem}_{stamp}{target.suffix}")


def merge(source: Path, home: Path, now: float | None = None) -> dict[str, list[str]]:
    """Merge `source` into `home` by the module's rules; what happened to which files."""
    now = time.time() if now is None else now
    before = read_manifest(home)
    after: dict[str, str] = {}
    report: dict[str, list[str]] = {"added": [], "updated": [], "kept": [], "restored": [],
                                    "renamed": [], "removed": [], "unreadable": []}
    try:
        for relative, path in sorted(repository_files(source).items()):
            try:
                new = file_hash(path)
            except PermissionError:  # the image's own file the home's owner may not read
                report["unreadable"].append(relative)
                continue
            target = home / relative
            known = before.get(relative)
            if target.is_symlink() or target.is_file():
                mine = file_hash(target)
                if mine == new:
                    after[relative] = new
                elif known is not None and mine == known:  # left as the repository put it
                    _copy(path, target)
                    after[relative] = new
                    report["updated"].append(relative)
                elif known is not None:  # the person's change wins; still judged against `known`
                    after[relative] = known
                    report["kept"].append(relative)
                else:  # the person's own file of the same name: kept beside the repository's
                    renamed = _kept_name(target, now)
                    os.replace(target, renamed)
                    _copy(path, target)
                    after[relative] = new
                    report["renamed"].append(relative)
            elif target.exists():  # a folder of the person's where the repository has a file
                after[relative] = known or ""
                report["kept"].append(relative)
            elif known is None:
                _copy(path, target)
                after[relative] = new
                report["added"].append(relative)
            elif known != new:  # deleted by the person, changed by the repository: back
                _copy(path, target)
                after[relative] = new
                report["restored"].append(relative)
            else:  # deleted by the person, unchanged in the repository: stays deleted
                after[relative] = known
        for relative, known in before.items():
            if relative in after:
                continue
            target = home / relative
            if (target.is_symlink() or target.is_file()) and file_hash(target) == known:
                target.unlink()
                report["removed"].append(relative)
        write_manifest(home, after)
    except OSError as exc:  # no space left in the home, above all
        raise MergeError(f"{type(exc).__name__}: {exc.strerror or exc}") from exc
    return report


def source_manifest(source: Path, home: Path) -> dict[str, list[str]]:
    """Write the manifest of `source` into `home`, which holds `source`'s files as copied."""
    files: dict[str, str] = {}
    report: dict[str, list[str]] = {"listed": [], "unreadable": []}
    try:
        for relative, path in sorted(repository_files(source).items()):
            try:
                files[relative] = file_hash(path)
            except PermissionError:  # as in merge(): not the repository's to judge
                report["unreadable"].append(relative)
                continue
            report["listed"].append(relative)
        write_manifest(home, files)
    except OSError as exc:
        raise MergeError(f"{type(exc).__name__}: {exc.strerror or exc}") from exc
    return report


def main(argv: list[str]) -> int:
    only_manifest = argv[:1] == ["--manifest"]
    argv = argv[1:] if only_manifest else argv
    if len(argv) != 2:
        print("usage: home_merge [--manifest] SOURCE HOME", file=sys.stderr)
        return 2
    try:
        report = (source_manifest if only_manifest else merge)(Path(argv[0]), Path(argv[1]))
    except MergeError as exc:
        print(f"could not merge the repository's files into the home: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: len(v) for k, v in report.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
