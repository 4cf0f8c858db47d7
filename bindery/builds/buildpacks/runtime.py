"""runtime.txt: which Python a repository asks for, and what a mirror build can give it.

The base image's Python (bookworm: 3.11) is always there. Other Pythons can be had only from other
suites of the Debian mirror (trixie: 3.13; CPython builds from elsewhere, e.g.
python-build-standalone, need GitHub): such a Python gets a kernel environment of its own, as repo2docker gives Python 2.7,
while Jupyter itself keeps running on the base image's Python. A request for a version that cannot
be had builds with the nearest one and a warning in the log, or fails when runtime_strict is set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bindery.builds.buildpacks.errors import BuildpackError

RUNTIME = re.compile(r"python-(\d+)(?:\.(\d+))?(?:\.\d+)?")


@dataclass(frozen=True)
class PythonChoice:
    version: str  # the Python the kernel will have
    suite: str = ""  # the Debian suite it comes from; "" for the base image's own Python
    warning: str = ""  # said in the build log when it is not what the repository asked for


def read_runtime(path: str) -> str:
    """The first line of runtime.txt, or "" when there is none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().strip()
    except FileNotFoundError:
        return ""


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def choose_python(requested: str, base: str, suites: dict[str, str], strict: bool,
                  source: str) -> PythonChoice:
    """The Python for a request like "3", "3.13" or "3.11.4" (read from `source`, for messages).

    `base`: the base image's Python; `suites`: other obtainable versions → their Debian suite.
    """
    if not requested:
        return PythonChoice(base)
    wanted = requested.split(".")[:2]
    if wanted == base.split(".")[: len(wanted)]:
        return PythonChoice(base)
    if len(wanted) == 2 and ".".join(wanted) in suites:
        return PythonChoice(".".join(wanted), suites[".".join(wanted)])
    have = sorted({base, *suites}, key=_key)
    message = (f"{source} asks for Python {requested}, but this service can only provide Python "
               f"{' or '.join(have)} (from its Debian mirror)")
    if strict:
        raise BuildpackError(f"{message}. Change {source} to one of "
                             f"{', '.join('python-' + v for v in have)}, or remove it.")
    # nearest by minor version; on a tie the base image's own (nothing extra to install)
    target = _key(".".join(wanted)) if len(wanted) == 2 else _key(base)
    nearest = min(have, key=lambda v: (abs(_key(v)[-1] - target[-1]) if _key(v)[0] == target[0]
                                       else 99, v != base))
    return PythonChoice(nearest, suites.get(nearest, "") if nearest != base else "",
                        f"WARNING: {message}; building with Python {nearest} instead. "
                        f"{_silence(source, nearest)}")


def _silence(source: str, version: str) -> str:
    """How the file that asked for a Python asks for `version` instead."""
    name = source.rsplit("/", 1)[-1]
    if name == "runtime.txt":
        return f"Set python-{version} in {source} to silence this."
    if name.endswith(".yml"):
        return f"Set python={version} in {source} to silence this."
    if name.startswith("Pipfile"):
        return (f"Set python_version = \"{version}\" in the Pipfile's [requires] (and lock "
                "again) to silence this.")
    return f"Ask for Python {version} in {source} to silence this."


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
