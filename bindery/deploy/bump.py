"""`bindery bump <instance>`: move an instance's configured version to the newest release, by a git commit.

Why: nobody copies a hash. The new version comes from the artifact store (what was actually released), and the
commit message lists the commits between the old and new versions, so the deploy history reads as a changelog.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from bindery.deploy import version_commits as deploygit, instances
from bindery.artifacts.store import ArtifactStore, newest
from bindery.git_commands import GitError
from bindery.versioning import commit_of_version, git


class BumpRefused(RuntimeError):
    """Nothing to bump to, or the newest release is older than the configured version."""


@dataclass(frozen=True)
class Bump:
    instance: str
    old: str
    new: str
    commits: list[str]  # "<short> <subject>" between old and new, newest first
    deploy_commit: str | None  # None when nothing changed
    message: str


def commits_between(source_repo: Path | None, old: str, new: str, limit: int = 200) -> list[str]:
    """One line per commit in ``old..new`` of the bindery repository (empty if it cannot tell)."""
    old_c, new_c = commit_of_version(old), commit_of_version(new)
    if source_repo is None or not new_c:
        return []
    rev = f"{old_c}..{new_c}" if old_c else new_c
    try:
        out = git(source_repo, "log", f"--max-count={limit}", "--format=%h %s", rev)
    except GitError:
        return []
    return [line for line in out.splitlines() if line]


def message(instance: str, old: str, new: str, commits: list[str], source_known: bool) -> str:
    lines = [f"bump {instance}: {old or '(none)'} → {new}", ""]
    if commits:
        lines.append(f"Commits between {old or 'the beginning'} and {new}:")
        lines += [f"- {c}" for c in commits]
    elif source_known:
        lines.append("No commits between them in the bindery repository (same content).")
    else:
        lines.append("(bindery repository not available: commit list omitted)")
    return "\n".join(lines) + "\n"


def bump(deploy_dir: Path, instance: str, store: ArtifactStore, source_repo: Path | None = None,
         allow_downgrade: bool = False) -> Bump:
    config = instances.load(deploy_dir, instance)
    latest = newest(store)
    if latest is None:
        raise BumpRefused(f"no released version in {store.location}: run `bindery release` first")
    old, new = config.version, latest.version
    if old == new:
        return Bump(instance, old, new, [], None, f"{instance} is already at the newest release {new}")
    if old and not allow_downgrade and _older(new, old):
        raise BumpRefused(f"newest release {new} in {store.location} is older than {instance}'s {old}; "
                          "refusing to go back (use --allow-downgrade, or deploy a rollback)")
    commits = commits_between(source_repo, old, new)
    text = message(instance, old, new, commits, source_repo is not None)
    path = instances.set_version(deploy_dir, instance, new)
    sha = deploygit.commit(deploy_dir, [path], text)
    return Bump(instance, old, new, commits, sha, text)


def _older(a: str, b: str) -> bool:
    try:
        return Version(a) < Version(b)
    except InvalidVersion:
        return False
