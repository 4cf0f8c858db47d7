"""Ref resolution times (no stack needed): a branch, a full SHA, an abbreviated SHA (first, i.e.
with the treeless clone, and cached), against a real smart-HTTP git server over a repository with
N commits, plus the same through a local server speaking GitHub's commits API (first and 304).

    .venv/bin/python bench/resolve.py [--commits 2000] [--runs 5]

Baseline in the same run: `git ls-remote` of the branch (what every resolution cost before).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bindery.git_commands import ls_remote  # noqa: E402
from bindery.providers import get_provider  # noqa: E402
from bindery.providers.refcache import RefCache  # noqa: E402
from bindery.settings import Settings  # noqa: E402
from tests.gitserver import GitServer  # noqa: E402
from tests.providers.apiservers import github_api  # noqa: E402
from tests.providers.conftest import many_commits  # noqa: E402
from tests.providers.httpgit import HttpGitServer  # noqa: E402


async def timed(cache: RefCache, settings: Settings, provider: str, spec: str) -> float:
    started = time.perf_counter()
    await cache.resolve(get_provider(settings, provider, spec))
    return time.perf_counter() - started


async def main(commits: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bindery-bench-resolve-") as tmp:
        git = GitServer(Path(tmp) / "git", 0)
        path, _ = git.create("bench", {"README": "x"})
        many_commits(git.root / path, commits)
        shas = git.git(git.root / path, "rev-list", "main").split()
        http = HttpGitServer(git.root)
        http.start()
        url = f"{http.base_url}/{path}"
        spec = lambda ref: f"{quote(url, safe='')}/{ref}"  # noqa: E731
        rows: dict[str, list[float]] = {k: [] for k in (
            "baseline: git ls-remote", "branch (uncached)", "branch (cached)", "full SHA",
            "abbreviated SHA, first (clone)", "abbreviated SHA, again (fetch, uncached)",
            "abbreviated SHA (cached)", "GitHub API branch, first", "GitHub API branch, 304")}
        api = github_api({path: {"main": shas[0], **{s: s for s in shas}}})
        for run in range(runs):
            fresh = Settings(data_dir=Path(tmp) / f"data{run}", ref_cache_seconds=0)
            cached = Settings(data_dir=Path(tmp) / f"data{run}", ref_cache_seconds=600)
            started = time.perf_counter()
            await ls_remote(url, "main", 20)
            rows["baseline: git ls-remote"].append(time.perf_counter() - started)
            uncached, warm = RefCache(fresh), RefCache(cached)
            rows["branch (uncached)"].append(await timed(uncached, fresh, "git", spec("main")))
            await timed(warm, cached, "git", spec("main"))
            rows["branch (cached)"].append(await timed(warm, cached, "git", spec("main")))
            rows["full SHA"].append(await timed(uncached, fresh, "git", spec(shas[run + 10])))
            short = shas[commits // 2 + run][:7]
            rows["abbreviated SHA, first (clone)"].append(
                await timed(uncached, fresh, "git", spec(short)))
            rows["abbreviated SHA, again (fetch, uncached)"].append(
                await timed(uncached, fresh, "git", spec(short)))
            await timed(warm, cached, "git", spec(short))
            rows["abbreviated SHA (cached)"].append(await timed(warm, cached, "git", spec(short)))
            gh = Settings(data_dir=Path(tmp) / f"gh{run}", github_url="https://github.example",
                          github_api_url=api.url, ref_cache_seconds=0)
            via_api = RefCache(gh)
            org, name = path.split("/")
            rows["GitHub API branch, first"].append(
                await timed(via_api, gh, "gh", f"{org}/{name}/main"))
            rows["GitHub API branch, 304"].append(
                await timed(via_api, gh, "gh", f"{org}/{name}/main"))
            for cache in (uncached, warm, via_api):
                await cache.aclose()
        base = sorted(rows["baseline: git ls-remote"])[len(rows["baseline: git ls-remote"]) // 2]
        print(f"repository: {commits} commits over smart HTTP; {runs} runs; median in ms "
              "(ratio to the ls-remote baseline)")
        for label, values in rows.items():
            median = sorted(values)[len(values) // 2]
            print(f"  {label:42s} {median * 1000:9.2f} ms  x{median / base:6.2f}   "
                  f"[min {min(values) * 1000:.2f}, max {max(values) * 1000:.2f}]")
        api.stop()
        http.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.commits, args.runs))
