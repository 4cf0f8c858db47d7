"""Abbreviated commit SHAs through the git protocol alone.

`git ls-remote` lists refs, not commits, so a prefix like ``50533eb`` needs the repository's commit
graph: a treeless (``--filter=tree:0``) bare clone holds every commit reachable from a branch or tag
and nothing else, kept per repository under ``<data_dir>/cache/commits`` and brought up to date by an
incremental fetch on each use. The cache keeps ``sha_cache_repos`` repositories (least recently used
go first); one fetch per repository runs at a time. A server without partial-clone support sends a
full (still bounded by ``git_fetch_timeout``) clone instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

from bindery.events import LaunchError
from bindery.git_commands import GitConfig, run_git

REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")


class AbbreviatedShas:
    def __init__(self, root: Path, max_repos: int, timeout: float) -> None:
        self.root = root
        self.max_repos = max(1, max_repos)
        self.timeout = timeout
        self._locks: dict[Path, asyncio.Lock] = {}
        self.fetches = 0  # clones + fetches run (for tests and metrics)

    def folder(self, url: str) -> Path:
        return self.root / (hashlib.sha256(url.encode()).hexdigest()[:24] + ".git")

    async def find(self, url: str, prefix: str, config: GitConfig = ()) -> str:
        """The one commit of `url` whose SHA starts with `prefix`; LaunchError if none or several."""
        folder = self.folder(url)
        lock = self._locks.setdefault(folder, asyncio.Lock())
        async with lock:
            await self._update(url, folder, config)
            commits = await self._matching_commits(folder, prefix)
            folder.touch()  # its mtime orders the least recently used
        self._evict(keep=folder)
        if len(commits) == 1:
            return commits[0]
        if not commits:
            raise LaunchError(f"Could not find ref {prefix!r} in {url}: no branch or tag has that "
                              "name and no commit on a branch or tag starts with it.", 404)
        shown = ", ".join(c[:12] for c in commits[:5])
        raise LaunchError(f"The abbreviated commit {prefix!r} is ambiguous in {url}: it matches "
                          f"{len(commits)} commits ({shown}). Use more of the commit's digits.", 400)

    async def _update(self, url: str, folder: Path, config: GitConfig) -> None:
        if (folder / "HEAD").exists():
            # By remote name: a partial clone fetches with a filter only from its promisor remote.
            args = ["-C", str(folder), "fetch", "--quiet", "--filter=tree:0", "--no-tags",
                    "origin", *REFSPECS]
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            args = ["clone", "--quiet", "--bare", "--filter=tree:0", "--", url, str(folder)]
        self.fetches += 1
        try:
            code, _, err = await run_git(*args, timeout=self.timeout, config=config)
        except TimeoutError:
            shutil.rmtree(folder, ignore_errors=True)  # a half-done clone is not a cache
            raise LaunchError(f"Fetching the commits of {url} took longer than "
                              f"{self.timeout:.0f} s.", 504) from None
        if code != 0:
            if args[0] == "clone":
                shutil.rmtree(folder, ignore_errors=True)
            reason = err.strip().splitlines()[-1] if err.strip() else f"git exited with {code}"
            raise LaunchError(f"Could not fetch the commits of {url}: {reason}", 404)

    async def _matching_commits(self, folder: Path, prefix: str) -> list[str]:
        code, out, _ = await run_git("-C", str(folder), "rev-parse", f"--disambiguate={prefix}",
                                     timeout=self.timeout)
        if code != 0:
            return []
        commits: set[str] = set()
        for name in out.split()[:50]:  # annotated tags peel to their commit; trees are absent
            code, peeled, _ = await run_git("-C", str(folder), "rev-parse", "--verify", "--quiet",
                                            f"{name}^{{commit}}", timeout=self.timeout)
            if code == 0 and peeled.strip():
                commits.add(peeled.strip())
        return sorted(c for c in commits if c.startswith(prefix))

    def _evict(self, keep: Path) -> None:
        if not self.root.is_dir():
            return
        folders = sorted((f for f in self.root.iterdir() if f.is_dir() and f != keep),
                         key=lambda f: f.stat().st_mtime, reverse=True)
        for stale in folders[self.max_repos - 1:]:
            lock = self._locks.get(stale)
            if lock is not None and lock.locked():
                continue
            shutil.rmtree(stale, ignore_errors=True)
            self._locks.pop(stale, None)
