"""Abbreviated commit SHAs through the git protocol alone.

`git ls-remote` lists refs, not commits, so a prefix like ``50533eb`` needs the repository's commit
graph: a treeless (``--filter=tree:0``) bare clone holds every commit reachable from a branch or tag
and nothing else, kept per repository under ``<data_dir>/cache/commits`` and brought up to date by an
incremental fetch on each use. The cache keeps at most ``sha_cache_repos`` repositories and
``sha_cache_bytes`` bytes (least recently used go first; the one just used stays even when it alone
is larger); one fetch per repository runs at a time. A server without partial-clone support sends a
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
    def __init__(self, root: Path, max_repos: int, timeout: float, max_bytes: int = 0) -> None:
        self.root = root
        self.max_repos = max(1, max_repos)
        self.max_bytes = max_bytes  # 0: no bound by bytes
        self.timeout = timeout
        self._locks: dict[Path, asyncio.Lock] = {}
        self.fetches = 0  # clones + fetches run (for tests and metrics)
        self.evicted = 0  # clones removed to keep within the bounds

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
        """Remove the least recently used clones beyond the count, then beyond the bytes (the
        clone just used is kept, and counted first)."""
        if not self.root.is_dir():
            return
        folders = sorted((f for f in self.root.iterdir() if f.is_dir() and f != keep),
                         key=lambda f: f.stat().st_mtime, reverse=True)
        held = _bytes(keep)
        for rank, folder in enumerate(folders, start=1):
            lock = self._locks.get(folder)
            if lock is not None and lock.locked():  # being fetched: its use makes it recent
                continue
            size = _bytes(folder)
            if rank < self.max_repos and (not self.max_bytes or held + size <= self.max_bytes):
                held += size
                continue
            shutil.rmtree(folder, ignore_errors=True)
            self._locks.pop(folder, None)
            self.evicted += 1


def _bytes(folder: Path) -> int:
    """Bytes of a bare clone's files (a few packs and refs: walked in a moment)."""
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:  # removed while walked
            continue
    return total
