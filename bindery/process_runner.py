"""The one way bindery runs a command to completion: an argument list (never a shell) and a timeout that is
required, never optional.

Why one place: git, podman, skopeo, nft, helm, pip and debootstrap are all external programs that can hang
(a dead registry, a stuck mount, a prompt). Each caller used to wrap ``subprocess`` its own way, and one of
them had no timeout by default. Here ``timeout`` is a required keyword, the child is killed (and reaped) when
it runs out, and the failure says which command and how long it had:

- :class:`CommandTimeout` is both a ``subprocess.TimeoutExpired`` and a ``TimeoutError``, so callers written
  for either keep working;
- a program that is not installed raises ``FileNotFoundError`` as ``subprocess`` does.

Long-running services (the hub, the registry, the engines) are *started*, not run to completion; they go
through bindery/stack/process.py ``spawn`` and are stopped by their process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

Completed = subprocess.CompletedProcess


class CommandTimeout(subprocess.TimeoutExpired, TimeoutError):
    """The command did not finish in time; it was killed."""

    def __str__(self) -> str:
        return f"`{' '.join(map(str, self.cmd))}` did not finish within {self.timeout:g} s"


def _argv(argv: Sequence[Any]) -> list[str]:
    return [str(a) for a in argv]


def run(
    argv: Sequence[Any],
    *,
    timeout: float,
    input: str | bytes | None = None,
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    capture: bool = True,
    text: bool = True,
) -> Completed:
    """Run ``argv`` to completion within ``timeout`` seconds; the completed process (any exit code).

    Standard input is closed unless ``input`` or ``stdin`` gives one (a command never waits for a person).
    """
    argv = _argv(argv)
    try:
        return subprocess.run(
            argv, timeout=timeout, input=input, stdin=None if input is not None else stdin,
            env=dict(env) if env is not None else None, cwd=str(cwd) if cwd is not None else None,
            capture_output=capture, text=text, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed and reaped the child
        raise CommandTimeout(argv, timeout, exc.output, exc.stderr) from None


async def run_async(
    argv: Sequence[Any],
    *,
    timeout: float,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> Completed:
    """:func:`run` for the event loop: output as bytes; on timeout or cancellation the child is killed."""
    argv = _argv(argv)
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=str(cwd) if cwd is not None else None, env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), timeout)
    except (TimeoutError, asyncio.CancelledError) as exc:
        proc.kill()
        await proc.wait()
        if isinstance(exc, TimeoutError):
            raise CommandTimeout(argv, timeout) from None
        raise
    return Completed(argv, proc.returncode, out, err)


@contextlib.contextmanager
def feeding(argv: Sequence[Any], *, timeout: float) -> Iterator[IO[bytes]]:
    """Start ``argv`` and give its standard output, to be read by another command (``tar … | podman import -``).

    When the block ends the producer must finish within ``timeout`` seconds (it has had the block's time to
    write); it is killed otherwise, and when the block fails. A producer that failed raises CalledProcessError.
    """
    argv = _argv(argv)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        yield proc.stdout
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise CommandTimeout(argv, timeout) from None
        if code != 0:
            raise subprocess.CalledProcessError(code, argv)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
