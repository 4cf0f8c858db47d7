"""A folder on the machine running the CLI (never reachable from the web)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bindery.events import LaunchError
from bindery.git_commands import run_git
from bindery.providers.base import RepoProvider
from bindery.settings import Settings


class LocalProvider(RepoProvider):
    name = "local"
    label = "Local folder (CLI only)"
    spec_example = "/path/to/repo"

    def __init__(self, settings: Settings, spec: str) -> None:  # noqa: D107 - no URL to validate
        path = Path(spec).expanduser().resolve()
        if not path.is_dir():
            raise LaunchError(f"{spec} is not a folder.", 400)
        self.settings = settings
        self.spec = str(path)
        self.repo_url = str(path)
        self.unresolved_ref = "HEAD"
        self.commit = None
        self.git_config = ()
        self._outbound_checked = True  # a folder: no network, nothing to check

    def parse(self, spec: str) -> tuple[str, str]:
        return spec, "HEAD"

    @property
    def slug(self) -> str:
        return f"local-{Path(self.spec).name}"

    async def resolve(self) -> str:
        """HEAD for a clean checkout, otherwise a hash of the folder's files (so edits rebuild)."""
        code, out, _ = await run_git("-C", self.spec, "status", "--porcelain", timeout=10)
        if code == 0 and not out.strip():
            code, out, _ = await run_git("-C", self.spec, "rev-parse", "HEAD", timeout=10)
            if code == 0:
                self.commit = out.strip()
                return self.commit
        self.commit = _folder_hash(Path(self.spec))
        return self.commit

    def persistent_spec(self) -> str:
        return self.spec


def _folder_hash(root: Path) -> str:
    digest = hashlib.sha1()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for filename in sorted(filenames):
            path = Path(dirpath, filename)
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            if path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()
