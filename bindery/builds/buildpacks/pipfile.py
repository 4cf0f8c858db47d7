"""Pipfile / Pipfile.lock repositories.

repo2docker runs ``pipenv install --system --dev`` (from Pipfile.lock when there is one, else after
locking Pipfile). bindery installs the same set, default and dev packages, with uv: the exact pins
of Pipfile.lock, or Pipfile's specifiers. They are read here and written into the install step, so
that step changes (and reinstalls) only when the Pipfile(s) do. Entries that point into the
repository (``path = "."``, editable) are installed after the repository is copied.

A lock pins versions for the Python it was made with (``_meta.requires.python_version``, which
picks the nearest Python here as runtime.txt would); when its pins cannot be installed on the
Python the image gets, the nearest installable set is installed instead and every change is in the
build's notice (bindery/builds/buildpacks/pinned_sets.py), unless runtime_strict refuses.
"""

from __future__ import annotations

import json
import os
import tomllib

from bindery.builds.buildpacks.base import MirrorBuildPack
from bindery.builds.buildpacks.errors import BuildpackError

SECTIONS_LOCK = ("default", "develop")
SECTIONS_PIPFILE = ("packages", "dev-packages")


def lock_requirements(lock: dict) -> tuple[list[str], list[str]]:
    """(pinned requirements, local paths) from a parsed Pipfile.lock."""
    pins: list[str] = []
    local: list[str] = []
    for section in SECTIONS_LOCK:
        for name, entry in (lock.get(section) or {}).items():
            if not isinstance(entry, dict):
                continue
            if "path" in entry:
                local.append(str(entry["path"]))
                continue
            spec = name + str(entry.get("version", ""))
            if entry.get("markers"):
                spec += f"; {entry['markers']}"
            pins.append(spec)
    return pins, local


def pipfile_requirements(pipfile: dict) -> tuple[list[str], list[str]]:
    """(requirements, local paths) from a parsed Pipfile."""
    reqs: list[str] = []
    local: list[str] = []
    for section in SECTIONS_PIPFILE:
        for name, entry in (pipfile.get(section) or {}).items():
            if isinstance(entry, str):
                reqs.append(name if entry.strip() in ("", "*") else name + entry.strip())
            elif isinstance(entry, dict):
                if "path" in entry:
                    local.append(str(entry["path"]))
                    continue
                extras = entry.get("extras") or []
                version = str(entry.get("version", "*")).strip()
                spec = name + (f"[{','.join(extras)}]" if extras else "")
                reqs.append(spec if version in ("", "*") else spec + version)
    return reqs, local


class PipfileBuildPack(MirrorBuildPack):
    def detect(self) -> bool:
        return any(os.path.exists(self.binder_path(n)) for n in ("Pipfile", "Pipfile.lock"))

    def requested_python(self) -> tuple[str, str]:
        """runtime.txt's Python if it names one, else the lock's (or Pipfile's) [requires]."""
        requested, source = super().requested_python()
        if requested:
            return requested, source
        for path in (self.binder_path("Pipfile.lock"), self.binder_path("Pipfile")):
            try:
                if path.endswith(".lock"):
                    with open(path, encoding="utf-8") as f:
                        requires = (json.load(f).get("_meta") or {}).get("requires") or {}
                else:
                    with open(path, "rb") as f:
                        requires = tomllib.load(f).get("requires") or {}
            except (OSError, ValueError, tomllib.TOMLDecodeError, AttributeError):
                continue  # a missing file; an unreadable one is said by _parsed
            version = str(requires.get("python_version") or requires.get("python_full_version")
                          or "") if isinstance(requires, dict) else ""
            if version:
                return ".".join(version.split(".")[:2]), path
        return "", source

    def _parsed(self) -> tuple[str, list[str], list[str]]:
        lock_path = self.binder_path("Pipfile.lock")
        pipfile_path = self.binder_path("Pipfile")
        try:
            if os.path.exists(lock_path):
                with open(lock_path, encoding="utf-8") as f:
                    return (lock_path, *lock_requirements(json.load(f)))
            with open(pipfile_path, "rb") as f:
                return (pipfile_path, *pipfile_requirements(tomllib.load(f)))
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            bad = lock_path if os.path.exists(lock_path) else pipfile_path
            raise BuildpackError(f"{bad} could not be read ({exc}). Fix {bad}.") from None

    def dependency_scripts(self) -> list[str]:
        source, requirements, _ = self._parsed()
        if not requirements:
            return []
        if source.endswith(".lock"):
            return [self.install(self.installable(requirements, source), source)]
        return [self.install(requirements, source)]

    def assemble_scripts(self) -> list[str]:
        source, _, local = self._parsed()
        base = os.path.dirname(source)
        paths = [os.path.normpath(os.path.join(base, p)) for p in local]
        return [self.install(paths, source)] if paths else []
