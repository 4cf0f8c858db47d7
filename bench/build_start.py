"""Fresh builds: request → `built` through the event stream, where the build's time goes, and build
start as a named container (bindery's executor) vs repo2docker as a child process of the service.

`figures()` (for bench/run.py): for fresh tiny Dockerfile repositories (a new repository each, so no
image to find), the median of request → `built` (issue 11: ≤ 2.5 s), of request → `ready` (the build
plus its first launch), and of repo2docker's start-up (the build's `Buildpacks` line → repo2docker's
first line: container start + Python start-up) beside a bare container of the build image started
on the build engine until it exits, measured in the same run.

`main()` (this file run alone) also compares build start as a container and as a subprocess.
Usage: .venv/bin/python bench/build_start.py [--rounds N] [--figures] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from urllib.parse import quote

from common import bench_stack, make_repo, summary
from figures import Figure, table

from bindery.builds.executors.engine import engine_client
from bindery.builds.queue import BuildJob
from bindery.builds.repo2docker_run import repo2docker_argv
from bindery.builds.runner import build_spec, engine_executor
from bindery.git_commands import safe_git_env
from bindery.settings import Settings
from bindery.stack import builder_image
from tests.gitserver import GitServer
from tests.production.watch import remove_users, watch

DOCKERFILE = "RUN echo built-$((6*7))"
STACK_OVERRIDES: dict[str, object] = {}  # the default stack: builds as a person's first click has them
BUILT_TARGET = 2.5  # seconds, request -> built (issue 11 point 4)
FIRST_R2D_LINE = "content provider"  # repo2docker's first line: "Picked Git content provider."


def job_for(settings: Settings, git, kind: str) -> BuildJob:
    name = f"start-{kind}-{uuid.uuid4().hex[:6]}"
    url = make_repo(git, settings, name, DOCKERFILE)
    return BuildJob(image=f"{settings.registry.host}/bindery/{name}:bench", repo=url, commit=None,
                    source=url)


# -- request -> built, through the service -------------------------------------------------------
async def fresh_launch(settings: Settings, git: GitServer) -> dict[str, float]:
    """One fresh repository launched through the event stream: when each step was seen."""
    url = make_repo(git, settings, f"fresh-{uuid.uuid4().hex[:8]}", DOCKERFILE)
    t0 = time.monotonic()
    seen = await watch(settings.service.web_url, "git", f"{quote(url, safe='')}/main")
    try:
        assert seen.last.phase == "ready", f"the launch failed: {seen.last.message}"

        def at(pred) -> float:
            found = seen.first(pred)
            assert found is not None, f"missing step in {seen.phases()}"
            return found.at - t0

        return {
            "built": at(lambda s: s.phase == "built"),
            "ready": at(lambda s: s.phase == "ready"),
            "r2d_start": at(lambda s: FIRST_R2D_LINE in s.event.message)
            - at(lambda s: s.event.message.startswith("Buildpacks:")),
        }
    finally:
        await remove_users(settings, url)


def bare_container(settings: Settings) -> float:
    """The build image started on the build engine until it exits (no Python): the floor of a
    build container's start."""
    client = engine_client(settings.build_socket, timeout=120)
    try:
        t0 = time.perf_counter()
        # detached, then waited for: the API's attached run can hang on podman 4.3 (it follows
        # the log of a container already removed)
        container = client.containers.run(builder_image.image_name(settings), ["true"], detach=True,
                                          network_mode="host")
        container.wait(timeout=120)
        elapsed = time.perf_counter() - t0
        container.remove(force=True)
        return elapsed
    finally:
        client.close()


async def figures(settings: Settings, git: GitServer, quick: bool) -> list[Figure]:
    rounds = 3 if quick else 7
    await fresh_launch(settings, git)  # warms what a running service has warm (probe, caches)
    runs, bare = [], []
    for _ in range(rounds):  # interleaved, so machine noise falls on both alike
        runs.append(await fresh_launch(settings, git))
        bare.append(await asyncio.to_thread(bare_container, settings))
    built = statistics.median(r["built"] for r in runs)
    ready = statistics.median(r["ready"] for r in runs)
    start = statistics.median(r["r2d_start"] for r in runs)
    return [
        Figure("fresh build, request -> built (median, tiny Dockerfile repo)", built, None,
               BUILT_TARGET, note=f"{rounds} fresh repositories; max "
                                  f"{max(r['built'] for r in runs):.3f} s"),
        Figure("fresh build: repo2docker start-up (median)", start, statistics.median(bare),
               None, note=f"{100 * start / built:.0f}% of request -> built; limit: a bare build "
                          "container run on the build engine"),
        Figure("fresh build + launch, request -> ready (median)", ready, None, None,
               note=f"{rounds} fresh repositories"),
    ]


# -- build start: container vs subprocess --------------------------------------------------------
async def as_container(settings: Settings, job: BuildJob) -> tuple[float, float]:
    executor = engine_executor(settings)
    spec = build_spec(settings, job, "standard", {})
    t0 = time.perf_counter()
    handle = await executor.start(spec)
    first = None
    async for _ in executor.follow(handle.name):
        first = first or time.perf_counter() - t0
    status = await executor.wait(handle)
    assert status == 0, f"container build failed ({status})"
    return first or float("nan"), time.perf_counter() - t0


async def as_subprocess(settings: Settings, job: BuildJob) -> tuple[float, float]:
    """repo2docker as a child process, with the same options the container gets."""
    spec = build_spec(settings, job, "standard", {})
    argv = repo2docker_argv([sys.executable, "-m", "repo2docker"], job.source, job.commit,
                            job.image, settings.builds.build_memory_limit)
    with tempfile.TemporaryDirectory(prefix="bench-r2d-") as home:
        env = {**spec.env, **safe_git_env(), "PATH": os.environ["PATH"], "HOME": home,
               "LANG": "C.UTF-8", "DOCKER_HOST": settings.build_socket}
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=home, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        assert proc.stdout is not None
        first = None
        async for _ in proc.stdout:
            first = first or time.perf_counter() - t0
        code = await proc.wait()
    assert code == 0, f"subprocess build failed ({code})"
    return first or float("nan"), time.perf_counter() - t0


async def compare_start(settings: Settings, git: GitServer, rounds: int) -> None:
    results: dict[str, list[tuple[float, float]]] = {"container": [], "subprocess": []}
    for _ in range(rounds):  # interleaved, so machine noise falls on both alike
        results["subprocess"].append(await as_subprocess(settings, job_for(settings, git, "p")))
        results["container"].append(await as_container(settings, job_for(settings, git, "c")))
    print(f"build start latency (ask → first log line), {rounds} fresh builds each:")
    for kind, values in results.items():
        print(f"  {kind:10s} first line: {summary([v[0] for v in values])}")
        print(f"  {kind:10s} whole build: {summary([v[1] for v in values])}")
    median = {k: statistics.median(v[0] for v in vals) for k, vals in results.items()}
    whole = {k: statistics.median(v[1] for v in vals) for k, vals in results.items()}
    print(f"ratio container/subprocess, first line: "
          f"{median['container'] / median['subprocess']:.2f}x "
          f"(+{median['container'] - median['subprocess']:.3f}s); whole build: "
          f"{whole['container'] / whole['subprocess']:.2f}x")


async def main(rounds: int, with_figures: bool, quick: bool) -> None:
    with bench_stack(**STACK_OVERRIDES) as (settings, git):
        if with_figures:
            print(table(await figures(settings, git, quick)))
        await compare_start(settings, git, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--figures", action="store_true", help="also the issue-11 figures")
    parser.add_argument("--quick", action="store_true", help="fewer rounds for the figures")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.figures, args.quick))
