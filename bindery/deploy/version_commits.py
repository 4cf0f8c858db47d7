"""git in the deploy folder: every change of an instance's version is a commit with a message that says why.

Why a module: bump and promote both commit, with the same care (argument lists, timeouts, an identity even on a
machine where none is configured, only the files they changed are staged).
"""

from __future__ import annotations

from pathlib import Path

from bindery.git_commands import GitError, git_in

GIT_TIMEOUT = 30.0  # seconds per git command in the deploy folder (a local repository)
FALLBACK_IDENTITY = ("-c", "user.name=bindery deploy", "-c", "user.email=deploy@bindery.invalid")


def git(deploy_dir: Path, *args: str) -> str:
    return git_in(deploy_dir, *args, timeout=GIT_TIMEOUT)


def ensure_repo(deploy_dir: Path) -> None:
    """Make the deploy folder a git repository if it is not one yet."""
    deploy_dir.mkdir(parents=True, exist_ok=True)
    if not (deploy_dir / ".git").exists():
        git(deploy_dir, "init", "-q")


def commit(deploy_dir: Path, paths: list[Path], message: str) -> str:
    """Stage exactly ``paths`` and commit them; return the new commit's hash."""
    ensure_repo(deploy_dir)
    rel = [str(Path(p).resolve().relative_to(deploy_dir.resolve())) for p in paths]
    git(deploy_dir, "add", "--", *rel)
    identity: tuple[str, ...] = ()
    try:
        git(deploy_dir, "config", "user.email")
    except GitError:
        identity = FALLBACK_IDENTITY
    git(deploy_dir, *identity, "commit", "-q", "-m", message, "--", *rel)
    return git(deploy_dir, "rev-parse", "HEAD")
