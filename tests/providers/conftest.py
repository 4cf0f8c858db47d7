"""Git servers for provider tests: the session's git daemon plus smart-HTTP servers over the same
repositories (one open, one requiring a token)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitserver import GIT_ENV, GitServer
from tests.providers.httpgit import HttpGitServer

SECRET = "bindery-test-secret-9f3c2e71d0a84b5c"


@pytest.fixture(scope="session")
def http_git(git_server: GitServer) -> Iterator[HttpGitServer]:
    server = HttpGitServer(git_server.root)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def private_git(git_server: GitServer) -> Iterator[HttpGitServer]:
    server = HttpGitServer(git_server.root, token=SECRET)
    server.start()
    yield server
    server.stop()


def many_commits(repo: Path, count: int) -> None:
    """`count` commits on main in one `git fast-import` run (fast, so prefixes collide)."""
    lines = []
    for i in range(count):
        lines += [f"commit refs/heads/main", f"mark :{i + 1}",
                  f"committer t <t@t> {1700000000 + i} +0000", "data <<EOT", f"commit {i}", "EOT"]
        if i == 0:
            lines.append("from refs/heads/main^0")
        lines += [f"M 644 inline f{i % 7}.txt", "data <<EOT", f"{i}", "EOT", ""]
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input="\n".join(lines) + "\n",
                   text=True, check=True, env=GIT_ENV, capture_output=True)
