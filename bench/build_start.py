"""Build start latency: a build as a named container on the build engine (bindery's executor) vs
repo2docker as a child process of the service (how bindery built before issue 9), same run.

Measures, per build of a fresh repository (no cache to hit): the time from asking for the build to
its first log line, and to its end. Prints both, their medians and the ratio container/subprocess.
Usage: .venv/bin/python bench/build_start.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid

from common import bench_stack, make_repo, summary

from bindery.build.queue import BuildJob
from bindery.build.repo2docker import repo2docker_argv
from bindery.build.runner import build_spec, engine_executor
from bindery.git import safe_git_env
from bindery.settings import Settings

DOCKERFILE = "RUN echo built-$((6*7))"


def job_for(settings: Settings, git, kind: str) -> BuildJob:
    name = f"start-{kind}-{uuid.uuid4().hex[:6]}"
    url = make_repo(git, settings, name, DOCKERFILE)
    return BuildJob(image=f"{settings.registry_host}/bindery/{name}:bench", repo=url, commit=None,
                    source=url)


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
                            job.image, settings.build_memory_limit)
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


async def main(rounds: int) -> None:
    with bench_stack() as (settings, git):
        results: dict[str, list[tuple[float, float]]] = {"container": [], "subprocess": []}
        for _ in range(rounds):  # interleaved, so machine noise falls on both alike
            results["subprocess"].append(await as_subprocess(settings, job_for(settings, git, "p")))
            results["container"].append(await as_container(settings, job_for(settings, git, "c")))
        print(f"build start latency (ask → first log line), {rounds} fresh builds each:")
        for kind, values in results.items():
            print(f"  {kind:10s} first line: {summary([v[0] for v in values])}")
            print(f"  {kind:10s} whole build: {summary([v[1] for v in values])}")
        median = {k: sorted(v[0] for v in vals)[len(vals) // 2] for k, vals in results.items()}
        whole = {k: sorted(v[1] for v in vals)[len(vals) // 2] for k, vals in results.items()}
        print(f"ratio container/subprocess, first line: "
              f"{median['container'] / median['subprocess']:.2f}x "
              f"(+{median['container'] - median['subprocess']:.3f}s); whole build: "
              f"{whole['container'] / whole['subprocess']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))
