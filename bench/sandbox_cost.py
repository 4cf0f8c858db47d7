"""What the build sandbox costs: fresh builds with the build steps sandboxed (their own network,
dropped capabilities, pids cgroup, file-size limit) and without (the engine's defaults: host
network, full root), in the same run on one stack of its own.

Two repositories: a tiny Dockerfile (FROM the base, one RUN) and a requirements.txt with numpy,
pandas and matplotlib pinned (mirror buildpacks, installed from PyPI). After one untimed warm-up
build of each (the layers all builds of a kind share), every build is fresh: each
gets a repository of its own whose content differs (a unique RUN / comment), so no step is reused
from the build store's layer cache; the order alternates (off, on, on, off, ...).

"Without" is bindery with bindery.builds.step_sandbox.options returning None, which is what the
build request asked before the sandbox existed.
Usage: .venv/bin/python bench/sandbox_cost.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from common import bench_stack

from bindery.builds import step_sandbox
from bindery.builds.buildpack_mode import BuildpacksChooser
from bindery.builds.queue import BuildJob
from bindery.builds.runner import engine_executor, run_build
from bindery.settings import Settings
from bindery.stack import base_image

SCIENCE = "numpy==2.1.3\npandas==2.2.3\nmatplotlib==3.9.2\n"
SANDBOXED = step_sandbox.options


async def build(settings: Settings, url: str, image: str, sandboxed: bool) -> float:
    step_sandbox.options = SANDBOXED if sandboxed else (lambda *args: None)
    job = BuildJob(image=image, repo=url, commit=None, source=url)
    executor = engine_executor(settings)
    start = time.perf_counter()
    try:
        async for _ in run_build(settings, BuildpacksChooser.from_settings(settings), executor,
                                 job, {}):
            pass
        return time.perf_counter() - start
    finally:
        await executor.aclose()
        step_sandbox.options = SANDBOXED


def repositories(git, settings: Settings, marker: str) -> dict[str, str]:
    base = base_image.reference(settings)
    _, tiny = git.create(f"tiny-{marker}", {
        "Dockerfile": f"FROM {base}\nRUN echo {marker} > /tmp/marker && python3 -c 'print(6*7)'\n"})
    _, science = git.create(f"science-{marker}", {"requirements.txt": f"# {marker}\n{SCIENCE}"})
    return {"tiny Dockerfile": tiny, "numpy/pandas/matplotlib": science}


async def measure(settings: Settings, git, rounds: int) -> dict[tuple[str, bool], list[float]]:
    times: dict[tuple[str, bool], list[float]] = {}
    # untimed: the first build of a kind also makes the layers every build of that kind shares
    # (the mirror buildpacks' system packages), which no later build repeats
    for kind, url in repositories(git, settings, "warm-up").items():
        image = f"{settings.registry.host}/bindery/cost-warm-{uuid.uuid4().hex[:10]}:x"
        print(f"  {kind:26s} warm-up          {await build(settings, url, image, True):7.1f} s")
    for n in range(rounds):
        for sandboxed in ((False, True) if n % 2 == 0 else (True, False)):
            repos = repositories(git, settings, uuid.uuid4().hex[:10])
            for kind, url in repos.items():
                image = f"{settings.registry.host}/bindery/cost-{uuid.uuid4().hex[:10]}:x"
                took = await build(settings, url, image, sandboxed)
                times.setdefault((kind, sandboxed), []).append(took)
                print(f"  {kind:26s} {'sandboxed' if sandboxed else 'engine defaults':16s} "
                      f"{took:7.1f} s", flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with bench_stack(buildpacks="mirror") as (settings, git):
        times = asyncio.run(measure(settings, git, args.rounds))
    print("\nfresh build (median of each), same run:")
    print(f"  {'repository':26s} {'engine defaults':>16s} {'sandboxed':>10s} {'ratio':>6s}")
    for kind in ("tiny Dockerfile", "numpy/pandas/matplotlib"):
        before = statistics.median(times[(kind, False)])
        after = statistics.median(times[(kind, True)])
        print(f"  {kind:26s} {before:14.1f} s {after:8.1f} s {after / before:6.2f}")


if __name__ == "__main__":
    main()
