"""runtime.txt: which Python a repository asks for, and what a mirror build can give it.

Only the base image's Python can be had from the mirrors (bookworm has 3.11; CPython builds from
elsewhere, e.g. python-build-standalone, need GitHub). A request for another version builds with
the base image's Python and a warning in the log, or fails when the operator set runtime_strict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bindery.build.buildpacks.errors import BuildpackError

RUNTIME = re.compile(r"python-(\d+)(?:\.(\d+))?(?:\.\d+)?")


@dataclass(frozen=True)
class PythonChoice:
    version: str  # the Python the image will have
    warning: str = ""  # said in the build log when it is not what the repository asked for


def read_runtime(path: str) -> str:
    """The first line of runtime.txt, or "" when there is none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().strip()
    except FileNotFoundError:
        return ""


def choose_python(requested: str, available: str, strict: bool, source: str) -> PythonChoice:
    """The Python for a request like "3", "3.12" or "3.11.4" (from `source`, for messages)."""
    if not requested:
        return PythonChoice(available)
    wanted = requested.split(".")[:2]
    if wanted == available.split(".")[: len(wanted)]:
        return PythonChoice(available)
    message = (f"{source} asks for Python {requested}, but this service can only provide Python "
               f"{available} (the one its Debian mirror has)")
    if strict:
        raise BuildpackError(f"{message}. Change {source} to python-{available}, or remove it.")
    return PythonChoice(available, f"WARNING: {message}; building with Python {available} "
                                   f"instead. Set python-{available} in {source} to silence this.")


def runtime_python(line: str, source: str) -> str:
    """The version a runtime.txt line asks for ("" for none); other runtimes are refused."""
    if not line:
        return ""
    match = RUNTIME.fullmatch(line)
    if match is None:
        raise BuildpackError(
            f"{source} says '{line[:80]}', which this service cannot build: it builds Python "
            f"repositories only (runtime.txt may say e.g. python-3.11). Change or remove {source}.")
    major, minor = match.group(1), match.group(2)
    return f"{major}.{minor}" if minor else major
