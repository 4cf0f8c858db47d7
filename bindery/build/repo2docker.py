"""Run one repo2docker build as a subprocess and turn its JSON log into events.

A subprocess (not the library in-process) so a build never blocks the service's event loop, can
be killed at its timeout, and never sees bindery's credentials: its environment is built from
scratch with only what a build needs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from bindery.events import Event, LaunchError
from bindery.git import SAFE_GIT_ENV

CONFIG_FILE = Path(__file__).with_name("repo2docker_config.py")
KNOWN_PHASES = {"fetching", "building", "pushing", "failed"}
MAX_LINE = 64 * 1024
TAIL_LINES = 200  # build output kept to explain a failure

# Build failures whose cause lies outside the repository, said so a person understands them.
# (pattern in the build output, lower case) -> explanation
KNOWN_CAUSES = (
    ("no space left on device",
     "the build machine ran out of disk space (no space left on device); this is not the "
     "repository's fault, please try again later"),
    ("container engine initialization error",
     "the build engine (container engine) is not answering, so the build could not run; "
     "please try again later"),
    ("error while fetching server api version",
     "the build engine (container engine) is not answering, so the build could not run; "
     "please try again later"),
)


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


def build_env(docker_host: str, home: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "LANG": "C.UTF-8",
        "DOCKER_HOST": docker_host,
        **SAFE_GIT_ENV,
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
                          extra_env: dict[str, str] | None = None) -> AsyncIterator[Event]:
    """Yield events of one build; raise LaunchError when it fails or exceeds `timeout`.

    `extra_env`: e.g. a private repository's GIT_CONFIG_* credential for repo2docker's git clone.
    """
    with tempfile.TemporaryDirectory(prefix="bindery-build-") as home:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=home, env={**build_env(docker_host, home), **(extra_env or {})},
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
                reason = (known_cause(tail) or (errors[-1] if errors else "")
                          or f"repo2docker exited with status {code}")
            raise LaunchError(f"Build failed: {reason}")


def known_cause(lines: list[str]) -> str | None:
    """A person-readable cause when the build output shows an infrastructure failure."""
    text = "\n".join(lines).lower()
    for pattern, explanation in KNOWN_CAUSES:
        if pattern in text:
            return explanation
    return None


def _kill(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
