"""`bindery version` and `bindery release`: the CLI face of bindery/release (parsing and printing only)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bindery.git import GitError
from bindery.release.version import PACKAGE_DIR, explain, package_version


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("version", help="Print bindery's release version, derived from git.",
                       description="Print the release version of a bindery checkout, derived from git alone: "
                       "the last commit that changed the packaged files and a commit count.")
    p.add_argument("--explain", action="store_true", help="Say which commit, why that one, how N was formed.")
    p.add_argument("--json", action="store_true", help="Machine-readable output.")
    p.add_argument("--repo", type=Path, default=None,
                   help="Checkout to look at (default: the one this bindery runs from).")
    p.set_defaults(func=cmd_version)

    r = sub.add_parser("release", help="Build this checkout's wheel into the artifact store.",
                       description="Build the wheel of the checkout's committed state, named by its derived "
                       "version, into the artifact store (folder with index.json).")
    r.add_argument("--store", type=Path, default=None, help="Artifact folder (default: settings.artifacts_path).")
    r.add_argument("--repo", type=Path, default=None, help="Checkout to release (default: this one).")
    r.add_argument("--force", action="store_true", help="Rebuild even if the version is already in the store.")
    r.add_argument("--json", action="store_true", help="Machine-readable output.")
    r.set_defaults(func=cmd_release)


def _repo(args: argparse.Namespace) -> Path | None:
    if args.repo is not None:
        return args.repo
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() else None


def cmd_version(args: argparse.Namespace) -> int:
    repo = _repo(args)
    if repo is None:  # installed wheel: the baked version is all there is
        version = package_version()
        print(json.dumps({"version": version, "source": "build-info"}) if args.json else version)
        return 0
    try:
        ex = explain(repo)
    except GitError as exc:
        if args.repo is None:
            version = package_version()
            print(json.dumps({"version": version, "source": "build-info"}) if args.json else version)
            return 0
        print(f"bindery version: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(ex.to_dict() if args.explain else {"version": ex.version, "commit": ex.commit}, indent=2))
    elif args.explain:
        print("\n".join(ex.lines()))
    else:
        print(ex.version)
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from bindery.release.build import ReleaseError, release
    from bindery.release.store import FolderStore
    from bindery.settings import Settings

    store = FolderStore(args.store or Settings().artifacts_path)
    repo = _repo(args)
    if repo is None:
        print("bindery release: not running from a checkout; pass --repo", file=sys.stderr)
        return 2
    try:
        result = release(repo, store, force=args.force)
    except (ReleaseError, GitError) as exc:
        print(f"bindery release: {exc}", file=sys.stderr)
        return 1
    a = result.artifact
    if args.json:
        print(json.dumps({**a.to_dict(), "already_there": result.already_there}, indent=2))
    else:
        state = "already in" if result.already_there else "released into"
        print(f"bindery {a.version} {state} {store.location}\n  {a.location}\n  sha256 {a.sha256}")
    return 0
