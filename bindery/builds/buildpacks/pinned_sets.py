"""Old pins on today's Pythons: the nearest set of packages that can be installed here.

A 2019 lock pins versions built for the Pythons of 2019 (pandas 0.24.2 has no wheel for 3.11, and
its source no longer builds; absl-py 0.9.0's setup.py refuses Python 3.10+). Before the build, uv
resolves the pinned set for the Python the image will have, from wheels only (``uv pip compile
--no-build``: wheels' metadata, so no code of any package runs here, and nothing old is built from
sources later). When it fails, the packages uv names in its explanation are relaxed one step at a
time — exact pin → the newest version of the same major version → the newest version that
installs — and the set is resolved again, until it resolves or nothing is left to relax. What
changed is said exactly (old pin → the version installed). A pure-Python package that never had a
wheel is left as pinned, installed from its sources.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bindery.builds.buildpacks.errors import BuildpackError
from bindery.builds.buildpacks.package_index import normal, project_files

PIN = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._\-]*)\s*(\[[^\]]*\])?\s*==\s*([A-Za-z0-9.*+!\-_]+)\s*(;.*)?")
NO_WHEELS = re.compile(r"([A-Za-z0-9][A-Za-z0-9._\-]*)[=<>!~]\S* has no usable wheels")
COMPILE_TIMEOUT = 120.0  # one resolution (downloads wheels' metadata through the index)
MAX_ROUNDS = 12  # resolutions tried at most (each relaxes at least one package one step)
EXACT, COMPATIBLE, NAME_ONLY = 0, 1, 2
LEVEL_WORDS = {COMPATIBLE: "newest of the same major version", NAME_ONLY: "newest that installs"}


@dataclass(frozen=True)
class Pin:
    name: str
    extras: str
    version: str
    marker: str

    def spec(self, level: int) -> str:
        base = self.name + self.extras
        marker = f" {self.marker}" if self.marker else ""
        if level == EXACT:
            return f"{base}=={self.version}{marker}"
        if level == COMPATIBLE:
            major = re.match(r"\d+", self.version)
            upper = f",<{int(major.group()) + 1}" if major else ""
            return f"{base}>={self.version.rstrip('.*')}{upper}{marker}"
        return f"{base}{marker}"


@dataclass(frozen=True)
class Installable:
    requirements: list[str]  # what to install
    only_binary: list[str]  # packages that must come as wheels (their old sources do not build)
    notices: list[str]  # what changed ([] when the set installs as pinned)
    explanation: str = ""  # uv's reason the pinned set does not resolve, for the build log


def uv_binary() -> str:
    """uv: the base image's (inside the build image), else this Python's or the one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "uv")
    for candidate in ("/opt/venv/bin/uv", here):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("uv")
    if not found:
        raise BuildpackError("uv is missing from the build image; the operators must rebuild it")
    return found


def mentioned(text: str, names: list[str]) -> list[str]:
    """Which of `names` (normal form) uv's explanation names."""
    flat = normal(text.replace("`", " "))
    return [n for n in names if re.search(rf"(?<![a-z0-9\-]){re.escape(n)}(?![a-z0-9])", flat)]


def has_compiled_wheels(index_url: str, name: str) -> bool:
    """Does the index hold any platform-specific wheel of `name` (so it is not pure Python)?"""
    files = project_files(index_url, name) or []
    return any(f.get("filename", "").endswith(".whl") and not f["filename"].endswith("-any.whl")
               for f in files)


def compile_set(specs: list[str], python: str, index_url: str) -> tuple[bool, str]:
    """(resolved?, uv's output): the resolution of `specs` for `python` on this platform."""
    argv = [uv_binary(), "pip", "compile", "-", "--no-build", "--no-header", "--no-annotate",
            "--python-version", python, "--python-platform",
            f"{platform.machine()}-manylinux_2_36", "--index-url", index_url, "--quiet"]
    try:
        done = subprocess.run(argv, input="\n".join(specs) + "\n", capture_output=True, text=True,
                              timeout=COMPILE_TIMEOUT, env={**os.environ, "UV_NO_CACHE": "1"})
    except subprocess.TimeoutExpired:
        raise BuildpackError(f"resolving the packages took longer than {COMPILE_TIMEOUT:.0f} s "
                             "(the package index is slow); please try again later") from None
    if done.returncode == 0:
        return True, done.stdout
    error = done.stderr.strip()
    if re.search(r"failed to fetch|error sending request|connection|timed out", error, re.I) \
            and "No solution found" not in error:
        raise BuildpackError(f"the package index {index_url} did not answer while resolving "
                             f"({error[-300:]}); please try again later")
    return False, error


def resolved_versions(output: str) -> dict[str, str]:
    versions = {}
    for line in output.splitlines():
        match = PIN.fullmatch(line.strip())
        if match:
            versions[normal(match.group(1))] = match.group(3)
    return versions


def nearest_installable(requirements: list[str], python: str, index_url: str, strict: bool,
                        source: str) -> Installable:
    """The set to install for `requirements` (a lock's pins) on `python`: as pinned when that
    resolves, else the nearest set that does (see the module's docstring)."""
    pins: dict[str, Pin] = {}
    others: list[str] = []  # requirements that are not exact pins: kept as written
    for requirement in requirements:
        match = PIN.fullmatch(requirement)
        if match is None:
            others.append(requirement)
            continue
        name, extras, version, marker = match.groups()
        pins[normal(name)] = Pin(name, extras or "", version, (marker or "").strip())
    if not pins:
        return Installable(list(requirements), [], [])
    levels = dict.fromkeys(pins, EXACT)
    opaque: set[str] = set()  # pure-Python packages shipped as sources only: not resolved here
    compiled: dict[str, bool] = {}

    def is_compiled(names: list[str]) -> None:
        todo = [n for n in names if n not in compiled]
        with ThreadPoolExecutor(max_workers=8) as pool:
            for name, answer in zip(todo, pool.map(lambda n: has_compiled_wheels(index_url, n),
                                                   todo), strict=True):
                compiled[name] = answer

    error = ""  # uv's first explanation: why the pinned set itself does not resolve
    for _ in range(MAX_ROUNDS):
        specs = [pins[n].spec(levels[n]) for n in pins if n not in opaque] + others
        ok, output = compile_set(specs, python, index_url)
        if ok:
            break
        error = error or output
        named = mentioned(output, [n for n in pins if n not in opaque]) or \
            [n for n in pins if n not in opaque]
        if strict:
            raise BuildpackError(
                f"the packages pinned in {source} cannot be installed on Python {python}, the "
                f"Python this service builds with ({_cause(output)}). Update the pins in "
                f"{source} (this service keeps to exact pins: runtime_strict).")
        wheelless = {normal(m) for m in NO_WHEELS.findall(output)}
        at_most = [n for n in named if n in wheelless and levels[n] == NAME_ONLY]
        is_compiled(at_most)
        sources_only = [n for n in at_most if not compiled[n]]
        if sources_only:  # pure Python that never had a wheel: installed as pinned, from sources
            opaque.update(sources_only)
            continue
        lowest = min(levels[n] for n in named)
        if lowest >= NAME_ONLY:
            raise BuildpackError(
                f"the packages in {source} cannot be installed together on Python {python}, even "
                f"without their pins ({_cause(output)}). Fix {source}.")
        for name in named:
            if levels[name] == lowest:
                levels[name] += 1
    else:
        raise BuildpackError(f"no installable set of the packages in {source} was found on "
                             f"Python {python} ({_cause(error)}). Update the pins in {source}.")
    got = resolved_versions(output)
    requirements_out, changes, only_binary = [], [], []
    for name, pin in pins.items():
        new = got.get(name, pin.version)  # absent: its marker excludes it on this Python
        if levels[name] == EXACT or new == pin.version:
            requirements_out.append(pin.spec(EXACT))
            continue
        requirements_out.append(Pin(pin.name, pin.extras, new, pin.marker).spec(EXACT))
        only_binary.append(pin.name)
        changes.append(f"{pin.name} {pin.version} → {new} ({LEVEL_WORDS[levels[name]]})")
    if not changes:
        return Installable(list(requirements), [], [])
    notices = [f"{source}: its pinned versions cannot be installed together on Python {python}; "
               "changed: " + "; ".join(changes)]
    return Installable(requirements_out + others, sorted(only_binary), notices, error)


def _cause(uv_output: str) -> str:
    lines = [ln.strip() for ln in uv_output.splitlines() if ln.strip()]
    cause = next((ln for ln in lines if ln.startswith(("cause:", "Because", "╰─▶"))),
                 lines[0] if lines else "")
    return cause.removeprefix("cause:").strip()[:300]
