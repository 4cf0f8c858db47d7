"""repo2docker's side of a build: its arguments, its JSON log lines as events, its failures explained.

Where repo2docker runs (a container on the build engine) is the executor's business
(bindery/builds/executors/base.py); bindery/builds/runner.py drives one build through it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from bindery.builds.buildpacks.devcontainer import image_registry
from bindery.events import Event

CONFIG_FILE = Path(__file__).with_name("repo2docker_config.py")
KNOWN_PHASES = {"fetching", "building", "pushing", "failed"}
MAX_LINE = 64 * 1024
TAIL_LINES = 200  # build output kept to explain a failure


async def output_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A build's output as it arrives (chunks cut anywhere) as lines ending in newline, each cut
    to MAX_LINE so one endless line cannot fill memory."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield line[:MAX_LINE] + b"\n"
        if len(buffer) > MAX_LINE:
            buffer = buffer[:MAX_LINE]
    if buffer:
        yield buffer + b"\n"

# Build failures said so a person understands them and knows what to change.
# (regular expression searched in the build output, explanation). The explanation may use the
# expression's groups ({0}, {1}) and {file}: the file the failing step installs from, as the mirror
# buildpacks announce it ("[bindery] installing the packages listed in <file>").
KNOWN_CAUSES = (
    (r"file size limit exceeded",
     "a build step wrote a file larger than the build's disk budget ({disk}); write less (or "
     "download less) in the build"),
    (r"(?:exit status 137|signal: killed|\bKilled\b)",
     "a build step was killed by the system, which happens when it uses more memory than the "
     "build's limit ({memory}); install less at once or ask the operators for more"),
    (r"no space left on device",
     "the build machine ran out of disk space (no space left on device); this is not the "
     "repository's fault, please try again later"),
    (r"container engine initialization error|error while fetching server api version",
     "the build engine (container engine) is not answering, so the build could not run; "
     "please try again later"),
    (r"fatal: transport '",
     "the repository has git submodules, which this service does not fetch (a submodule may point "
     "anywhere, including networks this service must not reach)"),
    (r"the requested url returned error: 30",
     "the repository's server answered the build's clone with a redirect it had not given "
     "before the build (redirects are followed only where checked, before the build); please "
     "try again, or use the repository's own URL"),
    (r"initializing source docker://([^\s/:@]+(?::\d+(?=/))?(?:/[^\s/:@]+)*(?::[\w.\-]+|@sha256:[0-9a-f]+)?)",
     "the base image {0} could not be pulled from its registry, {registry}{tried}. A Dockerfile "
     "must start FROM an image this service has (ARG BINDERY_BASE_IMAGE, then "
     "FROM ${{BINDERY_BASE_IMAGE}}) or one its registry mirrors serve; repositories without one "
     "need the service's buildpacks setting to be 'mirror' or 'auto' (ask its operators)"),
    (r"because ([\w.\-\[\]]+) was not found in the package registry|"
     r"no matching distribution found for ([\w.\-\[\]]+)",
     "the package {0} does not exist on this service's Python package index; fix its name in "
     "{file}"),
    (r"because there is no version of ([^\s,]+)|"
     r"could not find a version that satisfies the requirement ([^\s(]+)",
     "no version of the package {0} can be had from this service's Python package index; "
     "change its version in {file}"),
    (r"hash mismatch for `?([\w.\-\[\]=]+)",
     "a downloaded package ({0}) does not match the hash pinned for it in {file}; fix that hash "
     "in {file}"),
    (r"unable to locate package ([\w.+\-]+)",
     "the Debian package {0} does not exist in this service's Debian mirror; fix its name in "
     "{file}"),
    (r"\[bindery\] (\S+) exited with status (\d+)",
     "{0} exited with status {1}; fix {0} (its output is in the build log above)"),
    (r"\[bindery\] installing the packages listed in (\S+) failed",
     "installing the packages listed in {0} failed; see the build log above and fix {0}"),
)
STEP_FILE = re.compile(r"\[bindery\] installing the packages listed in ([^\s'\"]+)")
REPO2DOCKER_ERROR = "Error during build: "  # how repo2docker prefixes an exception's message
# The build image's repo2docker says success in a last line with the token bindery gave the build
# (bindery/builds/repo2docker_entry.py, which runs only in that image and keeps its own copies).
END_TOKEN_ENV = "BINDERY_BUILD_END_TOKEN"
END_KEY = "bindery_build_succeeded"
DIGEST_KEY = "digest"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
AUTH_ENV = "BINDERY_REGISTRY_AUTH"  # the pusher's docker config (bindery/builds/repo2docker_entry.py)
STEP_OPTIONS_ENV = "BINDERY_BUILD_STEP_OPTIONS"  # the build steps' sandbox (same)


def repo2docker_argv(command: list[str], repo: str, commit: str | None, image: str,
                     memory_limit: str, build_args: dict[str, str] | None = None,
                     push: bool = True, config: str = str(CONFIG_FILE)) -> list[str]:
    argv = [*command, "--config", config, "--json-logs", "--no-run",
            "--user-id", "1000", "--user-name", "jovyan",
            "--image-name", image, "--build-memory-limit", memory_limit]
    for key, value in (build_args or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    if push:
        argv.append("--push")
    if commit:
        argv += ["--ref", commit]
    # `--` so a repository string can never be read as an option.
    return [*argv, "--", repo]


def _end_record(raw: bytes) -> dict:
    if END_KEY.encode() not in raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) and isinstance(data.get(END_KEY), str) else {}


def end_line(raw: bytes) -> str | None:
    """The token of the build's success line, or None for any other line."""
    return _end_record(raw).get(END_KEY)


def end_digest(raw: bytes) -> str | None:
    """The digest the build's success line says the engine pushed (None: not that line, or no
    digest said)."""
    digest = _end_record(raw).get(DIGEST_KEY)
    return digest if isinstance(digest, str) and DIGEST.fullmatch(digest) else None


def parse_line(raw: bytes) -> Event:
    text = raw.decode("utf-8", errors="replace").rstrip("\n")
    try:
        data = json.loads(text)
    except ValueError:
        return Event(phase="unknown", message=text + "\n")
    if not isinstance(data, dict):
        return Event(phase="unknown", message=text + "\n")
    phase = str(data.get("phase", "unknown")).lower().removeprefix("r2dstate.")
    message = str(data.get("message", ""))
    if phase not in KNOWN_PHASES:
        phase = "unknown"
    if phase == "failed":
        # Inside the build stream, a failure line is log; the build's end decides the outcome.
        return Event(phase="building", message=message, error=True)
    extra = {"progress": data["progress"]} if phase == "pushing" and "progress" in data else {}
    return Event(phase=phase, message=message, **extra)


def known_cause(lines: list[str], mirrors: Mapping[str, str] | None = None,
                disk: str = "its disk budget", memory: str = "its memory limit") -> str | None:
    """A person-readable cause (and the file to change) when the build output shows one.
    `mirrors`: the engines' registry mirrors (registry -> mirror), named when a pull failed;
    ``disk`` and ``memory`` name the build's budgets."""
    text = "\n".join(lines)
    steps = STEP_FILE.findall(text)
    where = steps[-1] if steps else "your repository's dependency files"
    for pattern, explanation in KNOWN_CAUSES:
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            groups = [g for g in match.groups() if g is not None]
            registry = image_registry(groups[0]) if groups else ""
            mirror = (mirrors or {}).get(registry)
            tried = (f", through its mirror {mirror} (the service's registry_mirrors), which "
                     "could not serve it either" if mirror else
                     " (unreachable from this service; it has no mirror of it)")
            return explanation.format(*groups, file=where, registry=registry, tried=tried,
                                      disk=disk, memory=memory)
    return None
