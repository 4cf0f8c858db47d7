"""The release version of bindery, derived from git alone — never typed by a person.

Why: a deploy once failed because someone copied the merge commit's hash as the version, while the artifact was
named after the commit that last changed the packaged files. Here the version is computed, the same way for the
release, the deploy and the running service (`/versions`).

Scheme (PEP 440)::

    <BASE_VERSION>.dev<N>+g<H>          e.g. 0.1.dev42+g1a2b3c4d5e6f
    <BASE_VERSION>.dev<N>+g<H>.dirty    uncommitted changes to the packaged files (never released)

* ``H`` is the first 12 hex digits of the **last commit that changed the packaged files** (``PACKAGED_PATHS``),
  found with ``git log -1 -- <paths>``. git's default history simplification is what we want for merges: a merge
  whose packaged files equal those of one parent (TREESAME) is not shown, git follows that parent instead. So a merge
  that brings a branch's package changes into main names the branch commit that made them, not the merge; a merge
  that only brings README or test changes does not change the version. Only when both sides changed the package is
  the merge itself named: its packaged content first exists there. In every case the named commit's packaged files
  are identical to HEAD's (``explain`` checks this), so the wheel built at HEAD is the wheel of that commit.
* ``N`` is ``git rev-list --count <that commit>``: commits reachable from it. It grows whenever the package changes
  on top of the previous package change, so versions sort in release order.
* A commit outside the package (README, tests, docs) changes neither H nor N.

This module is stdlib-only and imports nothing from bindery, because ``setup.py`` loads it by path while building a
wheel (in an isolated build environment where bindery's dependencies are absent).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bindery.git_commands import GitError, git_in


BASE_VERSION = "0.1"
# The files whose content makes up the release; any change to them makes a new version. One declared list.
PACKAGED_PATHS: tuple[str, ...] = ("bindery", "pyproject.toml", "setup.py")
HASH_LENGTH = 12
GIT_TIMEOUT = 20.0
# Written into wheels and sdists at build time; an installed bindery (no git around) reads its version from here.
BUILD_INFO_NAME = "_build_info.json"
PACKAGE_DIR = Path(__file__).resolve().parent


def git(repo: Path | str, *args: str, timeout: float = GIT_TIMEOUT) -> str:
    """git in a checkout (bindery's own runner, bindery/git_commands.py), with this module's timeout."""
    return git_in(repo, *args, timeout=timeout)


@dataclass(frozen=True)
class Explanation:
    """Why a checkout has the version it has: everything an operator needs to trust it without reading git."""

    version: str
    base: str
    commit: str  # full hash of the last commit that changed the packaged files
    short: str
    subject: str
    committed_at: str  # ISO 8601
    count: int  # N
    count_rule: str
    changed_paths: list[str]  # packaged files that commit changed (against its first parent)
    packaged_paths: list[str]
    head: str
    head_subject: str
    commits_since: int  # commits between that commit and HEAD, none of which changed the packaged files
    via_merge: str | None  # merge on HEAD's first-parent line that brought the commit in, if it came from a branch
    via_merge_subject: str | None
    is_merge: bool  # the named commit is itself a merge (both sides changed the package)
    content_matches_head: bool  # packaged files at the commit == at HEAD (always true unless git is odd)
    dirty_paths: list[str] = field(default_factory=list)
    source: str = "git"

    @property
    def dirty(self) -> bool:
        return bool(self.dirty_paths)

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """The explanation as sentences, for `bindery version --explain`."""
        out = [f"version {self.version}"]
        out.append(
            f"  commit  {self.short} {self.subject!r} ({self.committed_at}) is the last commit that changed "
            f"the packaged files ({', '.join(self.packaged_paths)})"
        )
        shown = self.changed_paths[:10]
        more = f" and {len(self.changed_paths) - 10} more" if len(self.changed_paths) > 10 else ""
        out.append(f"  because it changed {', '.join(shown) or '(no files; merge result)'}{more}")
        if self.is_merge:
            out.append("  it is a merge whose result differs from both parents in the packaged files, so that "
                       "content first exists in the merge itself")
        if self.via_merge:
            out.append(f"  it reached the main line through merge {self.via_merge[:HASH_LENGTH]} "
                       f"{self.via_merge_subject!r}, which changed no packaged file relative to it, so the merge "
                       "is not the version")
        if self.commits_since:
            out.append(f"  HEAD {self.head[:HASH_LENGTH]} {self.head_subject!r} is {self.commits_since} commit(s) "
                       "later; none of them changed the packaged files, so they do not change the version")
        else:
            out.append("  it is HEAD")
        out.append(f"  N = {self.count}: {self.count_rule}")
        out.append(f"  local part g{self.short}: the first {HASH_LENGTH} hex digits of that commit")
        if not self.content_matches_head:
            out.append("  WARNING: packaged files at HEAD differ from that commit; report this, it is a bug")
        if self.dirty_paths:
            out.append(f"  '.dirty': uncommitted changes to {', '.join(self.dirty_paths[:10])} "
                       "(such a checkout cannot be released)")
        return out


def is_checkout_root(path: Path) -> bool:
    """True when ``path`` is the top of a git work tree (not merely somewhere inside an unrelated repository)."""
    try:
        top = git(path, "rev-parse", "--show-toplevel", timeout=5)
    except (GitError, OSError):
        return False
    return Path(top).resolve() == Path(path).resolve()


def last_package_commit(repo: Path | str, rev: str = "HEAD") -> str:
    """Full hash of the last commit reachable from ``rev`` that changed PACKAGED_PATHS (default simplification)."""
    commit = git(repo, "log", "-1", "--format=%H", rev, "--", *PACKAGED_PATHS)
    if not commit:
        raise GitError(f"no commit in {repo} changed any of {', '.join(PACKAGED_PATHS)}: not a bindery checkout?")
    return commit


def version_of(repo: Path | str, rev: str = "HEAD") -> str:
    """The release version at ``rev`` (committed content only; ignores the working tree)."""
    commit = last_package_commit(repo, rev)
    count = int(git(repo, "rev-list", "--count", commit))
    return format_version(count, commit)


def format_version(count: int, commit: str, dirty: bool = False) -> str:
    local = f"g{commit[:HASH_LENGTH]}" + (".dirty" if dirty else "")
    return f"{BASE_VERSION}.dev{count}+{local}"


def commit_of_version(version: str) -> str | None:
    """The abbreviated commit hash a version names (``0.1.dev4+gabc...`` → ``abc...``), or None."""
    _, _, local = version.partition("+")
    head = local.split(".")[0]
    return head[1:] if head.startswith("g") and len(head) > 1 else None


def dirty_paths(repo: Path | str) -> list[str]:
    """Packaged files with uncommitted changes (untracked files count: a wheel built here would contain them)."""
    out = git(repo, "status", "--porcelain", "--untracked-files=normal", "--", *PACKAGED_PATHS)
    return sorted({line[3:].split(" -> ")[-1] for line in out.splitlines() if line.strip()})


def explain(repo: Path | str, rev: str = "HEAD", check_dirty: bool = True) -> Explanation:
    """Derive the version at ``rev`` and say why. ``check_dirty`` looks at the working tree (only for HEAD)."""
    commit = last_package_commit(repo, rev)
    head = git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}")
    count = int(git(repo, "rev-list", "--count", commit))
    subject, committed_at, parents = git(repo, "log", "-1", "--format=%s%x00%cI%x00%P", commit).split("\x00")
    parent_list = parents.split()
    if parent_list:
        changed = git(repo, "diff", "--name-only", "--no-renames", parent_list[0], commit, "--", *PACKAGED_PATHS)
    else:
        changed = git(repo, "ls-tree", "-r", "--name-only", commit, "--", *PACKAGED_PATHS)
    since = int(git(repo, "rev-list", "--count", f"{commit}..{head}"))
    via_merge = via_subject = None
    if since:
        # HEAD's first-parent line, newest first, intersected with the descendants of the commit: the oldest of
        # those is where the commit joined the main line (a merge, unless the commit is on the line itself).
        descendants = set(git(repo, "rev-list", "--ancestry-path", f"{commit}..{head}").split())
        line = [c for c in git(repo, "rev-list", "--first-parent", f"{commit}..{head}").split() if c in descendants]
        if line:
            oldest = line[-1]
            if git(repo, "rev-parse", f"{oldest}^1") != commit:
                via_merge = oldest
                via_subject = git(repo, "log", "-1", "--format=%s", oldest)
    matches = _same_content(repo, commit, head)
    dirty = dirty_paths(repo) if (check_dirty and rev == "HEAD") else []
    head_subject = git(repo, "log", "-1", "--format=%s", head)
    return Explanation(
        version=format_version(count, commit, dirty=bool(dirty)),
        base=BASE_VERSION,
        commit=commit,
        short=commit[:HASH_LENGTH],
        subject=subject,
        committed_at=committed_at,
        count=count,
        count_rule=f"`git rev-list --count {commit[:HASH_LENGTH]}`, the number of commits reachable from it",
        changed_paths=[p for p in changed.splitlines() if p],
        packaged_paths=list(PACKAGED_PATHS),
        head=head,
        head_subject=head_subject,
        commits_since=since,
        via_merge=via_merge,
        via_merge_subject=via_subject,
        is_merge=len(parent_list) > 1,
        content_matches_head=matches,
        dirty_paths=dirty,
    )


def _same_content(repo: Path | str, a: str, b: str) -> bool:
    try:
        git(repo, "diff", "--quiet", a, b, "--", *PACKAGED_PATHS)
        return True
    except GitError:
        return False


def read_build_info(package_dir: Path = PACKAGE_DIR) -> dict | None:
    """The build info baked into a wheel or sdist, or None in a plain checkout."""
    try:
        return json.loads((package_dir / BUILD_INFO_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return None


def build_info(repo: Path | str) -> dict:
    """What gets baked into an artifact: the version and where it came from."""
    ex = explain(repo)
    return {"version": ex.version, "commit": ex.commit, "subject": ex.subject, "count": ex.count}


def package_version(package_dir: Path = PACKAGE_DIR) -> str:
    """bindery's own version: from git when running from a checkout, else from the baked build info.

    Git wins in a checkout so a stale baked file can never mislead; an installed wheel has no checkout around it.
    """
    root = package_dir.parent
    if (root / "pyproject.toml").is_file() and is_checkout_root(root):
        try:
            return explain(root).version
        except GitError:
            pass
    info = read_build_info(package_dir)
    if info and info.get("version"):
        return str(info["version"])
    return f"{BASE_VERSION}.dev0+unknown"
