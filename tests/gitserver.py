"""A real git server for tests: `git daemon` serving repositories the tests create."""

from __future__ import annotations

import socket
import subprocess
import uuid
from pathlib import Path

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": "/tmp"}


from bindery.backoff import wait_until
class GitServer:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"git://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10) -> None:
        self.proc = subprocess.Popen(
            ["git", "daemon", "--export-all", "--reuseaddr", f"--base-path={self.root}",
             "--listen=127.0.0.1", f"--port={self.port}", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: socket.create_connection(("127.0.0.1", self.port), 0.2).close() or True, timeout=timeout,
                   what=f"git daemon listening on {self.port}", interval=0.05, errors=(OSError,))

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)

    def git(self, repo: Path, *args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                              text=True, env=GIT_ENV).stdout.strip()

    def create(self, name: str, files: dict[str, str], org: str = "org") -> tuple[str, str]:
        """A new repository `org/<name>-<unique>` with one commit on `main`; (path, URL)."""
        path = f"{org}/{name}-{uuid.uuid4().hex[:8]}"
        repo = self.root / path
        repo.mkdir(parents=True)
        self.git(repo, "init", "-q", "-b", "main")
        self.commit(repo, files, "initial")
        return path, f"{self.base_url}/{path}"

    def commit(self, repo: Path, files: dict[str, str], message: str) -> str:
        for rel, text in files.items():
            target = repo / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git(repo, "add", "-A")
        self.git(repo, "commit", "-q", "-m", message)
        return self.git(repo, "rev-parse", "HEAD")
