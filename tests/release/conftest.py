"""Throwaway git repositories shaped like a bindery checkout, for version and release tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


class Repo:
    """A tiny git repository with helpers to commit files and merge branches (git through argument lists)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "test@example.org")
        self.git("config", "user.name", "test")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str) -> str:
        proc = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, text=True,
                              timeout=30, check=True)
        return proc.stdout.strip()

    def write(self, files: dict[str, str]) -> None:
        for name, content in files.items():
            path = self.path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)

    def commit(self, message: str, files: dict[str, str] | None = None) -> str:
        """Write ``files`` (relative path → content), stage them and commit; return the commit hash."""
        files = files or {}
        self.write(files)
        if files:
            self.git("add", "--", *files)
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def checkout(self, *args: str) -> None:
        self.git("checkout", "-q", *args)

    def merge(self, branch: str, message: str) -> str:
        self.git("merge", "-q", "--no-ff", "-m", message, branch)
        return self.head()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "checkout")
    r.commit("initial package", {"bindery/__init__.py": "", "pyproject.toml": "[project]\nname = 'bindery'\n",
                                 "README.md": "hello\n", ".gitignore": "__pycache__/\n"})
    return r
