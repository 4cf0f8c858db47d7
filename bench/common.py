"""Shared set-up for benchmarks: a stack of its own (free ports, own data folder, the shared base
image cache), a real git daemon, and Dockerfile repositories built on the stack's base image."""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bindery.backoff import wait_until_async
from bindery import stack as embedded  # noqa: E402
from bindery.launches.hub_api import Hub  # noqa: E402
from bindery.settings import Settings  # noqa: E402
from tests.conftest import free_port, stack_env  # noqa: E402
from tests.gitserver import GitServer  # noqa: E402


@contextlib.contextmanager
def bench_stack(**overrides: object) -> Iterator[tuple[Settings, GitServer]]:
    with tempfile.TemporaryDirectory(prefix="bindery-bench-") as tmp:
        git = GitServer(Path(tmp) / "git", free_port())
        (Path(tmp) / "git").mkdir()
        git.start()
        base = git.base_url
        env = stack_env(Path(tmp) / "stack", github_url=base, gitlab_url=base, gist_url=base,
                        **overrides)
        os.environ.update(env)
        settings = Settings()
        try:
            embedded.up(settings, log=lambda m: print(f"  [stack] {m}", file=sys.stderr))
            yield settings, git
        finally:
            embedded.down(settings)
            git.stop()


def make_repo(git: GitServer, settings: Settings, name: str, extra: str = "") -> str:
    base = embedded.status(settings)["base_image"]
    _, url = git.create(name, {"Dockerfile": f"FROM {base}\n{extra}\n"})
    return url


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return (f"n={len(values)} median={statistics.median(values):.3f}s "
            f"p90={p90:.3f}s max={max(values):.3f}s min={min(values):.3f}s")


async def cleanup(hub: Hub, names: list[str]) -> None:
    """Stop and delete the hub users a benchmark made, then forget them (`names` is emptied)."""
    for name in names:
        await hub.stop_server(name)
        # the hub refuses deletion while the server stops
        await wait_until_async(lambda name=name: hub.delete_user(name), timeout=10, what=f"hub user {name} deleted")
    names.clear()
