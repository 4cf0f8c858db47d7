"""`bindery version` and `bindery release`: the CLI face of bindery/release (parsing and printing only)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bindery.git_commands import GitError
from bindery.versioning import PACKAGE_DIR, explain, package_version


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
    r.add_argument("--images", action="store_true",
                   help="Also build bindery's image FROM the released wheel and the repo2docker build image, tag "
                   "both with the version's image tag ('+' written as '-'), push them and read them back. Needs the "
                   "stack (`bindery up`): its build engine and base image.")
    r.add_argument("--registry", default=None, metavar="HOST/PREFIX",
                   help="Where --images pushes (default: <the stack's registry>/bindery-release).")
    r.add_argument("--chart", nargs="?", const="", default=None, type=str, metavar="PATH",
                   help="Also `helm package` the chart at PATH (default: helm/bindery of the checkout) with the "
                   "release's SemVer as version and its image tag as appVersion, into the artifact store.")
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
    from docker.errors import DockerException
    from httpx import HTTPError

    from bindery.release.build import ReleaseError, release
    from bindery.release.chart import DEFAULT_CHART, ChartError, package_chart
    from bindery.release.release_images import ImageError, release_images
    from bindery.artifacts.store import FolderStore
    from bindery.artifacts.tags import VersionNameError
    from bindery.settings import Settings
    from bindery.stack.process import StackError

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
    out: dict = {**a.to_dict(), "already_there": result.already_there}
    state = "already in" if result.already_there else "released into"
    lines = [f"bindery {a.version} {state} {store.location}", f"  {a.location}", f"  sha256 {a.sha256}"]
    try:
        if args.chart is not None:
            chart = package_chart(Path(args.chart) if args.chart else repo / DEFAULT_CHART, a.version, a.commit,
                                  store, force=args.force)
            out["chart"] = chart.to_dict()
            lines.append(f"  chart {chart.location}")
        if args.images:
            log = (lambda m: print(m, file=sys.stderr, flush=True))
            images = release_images(Settings(), a, args.registry, force=args.force, log=log)
            out["images"] = [i.to_dict() for i in images]
            lines += [f"  image {i.name} ({i.source}, {i.compressed_bytes / 1e6:.0f} MB in the registry, "
                      f"{i.seconds:g} s)\n    {i.digest}" for i in images]
    except (ChartError, ImageError, VersionNameError, StackError, OSError, DockerException, HTTPError) as exc:
        print(f"bindery release: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2) if args.json else "\n".join(lines))
    return 0
