"""The git adapter: every git command bindery runs, with user input never parsed as an option.

Arguments go after ``--``; ``GIT_ALLOW_PROTOCOL`` limits transports (no ``ext::``, ``file``);
prompts are off so a private repository fails instead of hanging; every call has a timeout.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from bindery.events import LaunchError

SAFE_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ALLOW_PROTOCOL": "http:https:git",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_ASKPASS": "/bin/false",
    "SSH_ASKPASS": "/bin/false",
}


def git_env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "http_proxy",
                                                         "https_proxy", "no_proxy", "SSL_CERT_FILE")}
    return {**keep, **SAFE_GIT_ENV}


async def run_git(*args: str, timeout: float, cwd: str | None = None,
                  extra_env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """`extra_env` adds to the safe environment (e.g. GIT_CONFIG_* credentials, never in argv)."""
    proc = await asyncio.create_subprocess_exec(
        "git", *args, cwd=cwd, env={**git_env(), **(extra_env or {})},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def ls_remote(url: str, ref: str, timeout: float,
                    extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map ref names to commits for refs matching `ref` in the repository at `url`."""
    try:
        # `<ref>^{}` too: patterns match whole name tails, and an annotated tag's commit is listed
        # as refs/tags/<ref>^{} (without it a tag resolved to the tag object, not its commit).
        code, out, err = await run_git("ls-remote", "--", url, ref, f"{ref}^{{}}",
                                       timeout=timeout, extra_env=extra_env)
    except TimeoutError:
        raise LaunchError(f"The repository {url} did not answer within {timeout:.0f} s.", 504) from None
    if code != 0:
        reason = err.strip().splitlines()[-1] if err.strip() else f"git exited with {code}"
        raise LaunchError(f"Could not reach the repository {url}: {reason}", 404)
    refs: dict[str, str] = {}
    for line in out.splitlines():
        commit, _, name = line.partition("\t")
        if name:
            refs[name] = commit
    return refs

