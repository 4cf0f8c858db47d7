"""Run one repo2docker build as a subprocess and turn its JSON log into events.

A subprocess (not the library in-process) so a build never blocks the service's event loop, can
be killed at its timeout, and never sees bindery's credentials: its environment is built from
scratch with only what a build needs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from bindery.events import Event, LaunchError
from bindery.git import GitConfig, safe_git_env

CONFIG_FILE = Path(__file__).with_name("repo2docker_config.py")
KNOWN_PHASES = {"fetching", "building", "pushing", "failed"}
MAX_LINE = 64 * 1024
TAIL_LINES = 200  # build output kept to explain a failure

# Build failures said so a person understands them and knows what to change.
# (regular expression searched in the build output, explanation). The explanation may use the
# expression's groups ({0}, {1}) and {file}: the file the failing step installs from, as the mirror
# buildpacks announce it ("[bindery] installing the packages listed in <file>").
KNOWN_CAUSES = (
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
     "the repository's server answered with a redirect, which this service does not follow (it "
     "could lead anywhere); use the repository's own URL"),
    (r"initializing source docker://([^\s:]+(?::[\w.\-]+)?)",
     "the base image {0} could not be pulled: this service cannot reach its registry (Docker "
     "Hub). A Dockerfile must start FROM an image this service has (ARG BINDERY_BASE_IMAGE, then "
     "FROM ${{BINDERY_BASE_IMAGE}}); repositories without one need the service's buildpacks "
     "setting to be 'mirror' or 'auto' (ask its operators)"),
    (r"because ([\w.\-\[\]]+) was not found in the package registry|"
     r"no matching distribution found for ([\w.\-\[\]]+)",
     "the package {0} does not exist on this service's Python package index; fix its name in "
     "{file}"),
    (r"because there is no version of ([^\s,]+)|"
     r"could not find a version that satisfies the requirement ([^\s(]+)",
     "no version of the package {0} can be had from this service's Python package index; "
     "change its version in {file}"),
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


def repo2docker_argv(command: list[str], repo: str, commit: str | None, image: str,
                     memory_limit: str, build_args: dict[str, str] | None = None,
                     push: bool = True) -> list[str]:
    argv = [*command, "--config", str(CONFIG_FILE), "--json-logs", "--no-run",
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


def build_env(docker_host: str, home: str, extra: dict[str, str] | None = None,
              git_config: GitConfig = ()) -> dict[str, str]:
    env = {
        **(extra or {}),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "LANG": "C.UTF-8",
        "DOCKER_HOST": docker_host,
        **safe_git_env(git_config),
    }
    for name in ("SSL_CERT_FILE", "http_proxy", "https_proxy", "no_proxy"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


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


async def run_repo2docker(argv: list[str], docker_host: str, timeout: float,
                          env: dict[str, str] | None = None,
                          git_config: GitConfig = ()) -> AsyncIterator[Event]:
    """Yield events of one build; raise LaunchError when it fails or exceeds `timeout`.

    `env`: extra environment for repo2docker (the BINDERY_BUILD_* options its config reads).
    """
    with tempfile.TemporaryDirectory(prefix="bindery-build-") as home:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=home, env=build_env(docker_host, home, env, git_config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, limit=MAX_LINE, start_new_session=True,
        )
        errors: list[str] = []
        tail: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            assert proc.stdout is not None
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError
                try:
                    raw = await asyncio.wait_for(proc.stdout.readline(), remaining)
                except ValueError:  # a line longer than MAX_LINE: skip the rest of it
                    continue
                if not raw:
                    break
                event = parse_line(raw)
                tail = [*tail[-TAIL_LINES:], event.message]
                if event.model_extra and event.model_extra.get("error"):
                    errors.append(event.message.strip())
                yield event
            code = await asyncio.wait_for(proc.wait(), max(0.1, deadline - loop.time()))
        except TimeoutError:
            _kill(proc)
            await proc.wait()
            raise LaunchError(f"The build took longer than {timeout:.0f} s and was stopped.") from None
        except BaseException:
            _kill(proc)
            await proc.wait()
            raise
        if code != 0:
            if code < 0:
                reason = f"the build process was killed (signal {-code})"
            else:
                reason = (known_cause(tail)
                          or (errors[-1].removeprefix(REPO2DOCKER_ERROR) if errors else "")
                          or f"repo2docker exited with status {code}")
            raise LaunchError(f"Build failed: {reason}")


def known_cause(lines: list[str]) -> str | None:
    """A person-readable cause (and the file to change) when the build output shows one."""
    text = "\n".join(lines)
    steps = STEP_FILE.findall(text)
    where = steps[-1] if steps else "your repository's dependency files"
    for pattern, explanation in KNOWN_CAUSES:
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            groups = [g for g in match.groups() if g is not None]
            return explanation.format(*groups, file=where)
    return None


def _kill(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
