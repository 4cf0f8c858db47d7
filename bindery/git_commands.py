"""The git adapter: every git command bindery runs, with user input never parsed as an option.

Arguments go after ``--``; prompts are off so a private repository fails instead of hanging; every
call has a timeout, and at most ``git_concurrency`` git processes run at once. git reads none of the
service user's or the system's config (``GIT_CONFIG_GLOBAL=/dev/null``, ``GIT_CONFIG_NOSYSTEM``);
its config comes only from ``GIT_CONFIG_COUNT``/``KEY``/``VALUE`` entries, which child gits (the
build's clone, its ``git submodule update``) inherit:

- transports: only http, https and git, and only when a person asked for them directly
  (``protocol.<name>.allow=user``): ``git submodule`` marks its clones as not from the user
  (``GIT_PROTOCOL_FROM_USER=0``), so a submodule pointing anywhere (a private address, ``file``)
  is never fetched;
- no redirects (``http.followRedirects=false``): a 302 to a private address is not followed;
  bindery/providers/redirects.py follows moved repositories itself, checking every hop;
- the address the outbound policy checked (``bindery.outbound.Pin.git_config``), appended per call.

The operator's own repositories (bindery's checkout for its version, the deploy folder's commits) are run with
:func:`git_in` instead: synchronous, the operator's git config (their identity), the same timeout discipline.
"""

from __future__ import annotations

import asyncio
import os
import re
import weakref
from pathlib import Path
from collections.abc import Sequence

from bindery import process_runner


GitConfig = Sequence[tuple[str, str]]

BASE_GIT_CONFIG: tuple[tuple[str, str], ...] = (
    ("protocol.allow", "never"),
    ("protocol.http.allow", "user"),
    ("protocol.https.allow", "user"),
    ("protocol.git.allow", "user"),
    ("protocol.file.allow", "never"),
    ("http.followRedirects", "false"),
)


def git_config_env(extra: GitConfig = ()) -> dict[str, str]:
    """Environment that gives git (and every git it starts) exactly this config."""
    entries = [*BASE_GIT_CONFIG, *extra]
    env = {"GIT_CONFIG_COUNT": str(len(entries))}
    for index, (key, value) in enumerate(entries):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def safe_git_env(extra: GitConfig = ()) -> dict[str, str]:
    """The git part of the environment of any process that runs git on user input."""
    return {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        **git_config_env(extra),
    }


SAFE_GIT_ENV = safe_git_env()
REDIRECTED = re.compile(r"returned error: 30[1278]")  # curl's words for a refused redirect


def git_env(extra: GitConfig = ()) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "http_proxy",
                                                         "https_proxy", "no_proxy", "SSL_CERT_FILE")}
    return {**keep, **safe_git_env(extra)}


class GitError(RuntimeError):
    """A git command in the operator's repository failed; the message names the command and git's own words."""


def operator_git_env() -> dict[str, str]:
    """git in the operator's own repositories: their environment and config, never a prompt or a pager."""
    return {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat"}


def git_in(repo: Path | str, *args: str, timeout: float) -> str:
    """Run git in the operator's repository ``repo`` (argument list, no shell, bounded by ``timeout``);
    return its output without the trailing newline, or raise GitError."""
    cmd = ["git", "-C", str(repo), "-c", "log.showSignature=false", *args]
    try:
        proc = process_runner.run(cmd, timeout=timeout, env=operator_git_env())
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except process_runner.CommandTimeout:
        raise GitError(f"`{' '.join(cmd)}` did not finish within {timeout:g} s") from None
    if proc.returncode != 0:
        raise GitError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.rstrip("\n")


class GitSlots:
    """At most `limit` git processes at once, per event loop (a semaphore belongs to one loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())

    def configure(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._by_loop.clear()

    def semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._by_loop.get(loop)
        if semaphore is None:
            semaphore = self._by_loop[loop] = asyncio.Semaphore(self.limit)
        return semaphore

    @property
    def running(self) -> int:
        try:
            semaphore = self._by_loop.get(asyncio.get_running_loop())
        except RuntimeError:
            return 0
        return 0 if semaphore is None else self.limit - semaphore._value  # noqa: SLF001


# The process-wide cap on git subprocesses; Services.create sets it from settings.providers.git_concurrency.
GIT_SLOTS = GitSlots(8)


async def run_git(*args: str, timeout: float, cwd: str | None = None,
                  config: GitConfig = ()) -> tuple[int, str, str]:
    """Run git; `timeout` covers the wait for a slot too, so a crowd cannot queue forever."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with asyncio.timeout_at(deadline):
        await GIT_SLOTS.semaphore().acquire()
    try:
        if loop.time() >= deadline - 0.1:  # got a slot with no time left to use it
            raise TimeoutError
        proc = await process_runner.run_async(["git", *args], cwd=cwd, env=git_env(config),
                                              timeout=max(0.1, deadline - loop.time()))
    finally:
        GIT_SLOTS.semaphore().release()
    return proc.returncode or 0, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


async def ls_remote(url: str, ref: str, timeout: float,
                    config: GitConfig = ()) -> dict[str, str]:
    """Map ref names to commits for refs matching `ref` in the repository at `url`."""
    # Imported here: this module stays standard-library-only at import, because setup.py's build
    # environment (no dependencies) loads it through release/version.py.
    from bindery.events import LaunchError, RepositoryRedirected

    try:
        # `<ref>^{}` too: patterns match whole name tails, and an annotated tag's commit is listed
        # as refs/tags/<ref>^{} (without it a tag resolved to the tag object, not its commit).
        code, out, err = await run_git("ls-remote", "--", url, ref, f"{ref}^{{}}",
                                       timeout=timeout, config=config)
    except TimeoutError:
        raise LaunchError(f"The repository {url} did not answer within {timeout:.0f} s.", 504) from None
    if code != 0:
        if REDIRECTED.search(err):
            # bindery/providers/redirects.py follows it (checked hop by hop) and asks again.
            raise RepositoryRedirected(
                f"The repository {url} answered with a redirect that could not be followed. Use "
                "the repository's own URL, e.g. its new name if it was renamed.", 404)
        reason = err.strip().splitlines()[-1] if err.strip() else f"git exited with {code}"
        raise LaunchError(f"Could not reach the repository {url}: {reason}", 404)
    refs: dict[str, str] = {}
    for line in out.splitlines():
        commit, _, name = line.partition("\t")
        if name:
            refs[name] = commit
    return refs
