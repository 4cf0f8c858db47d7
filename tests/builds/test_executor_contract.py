"""The build executor contract (bindery/builds/executors/base.py), written once, run against every
implementation: the engine (named containers on the session stack's build podman) and Kubernetes
(named pods, through the real kubernetes_asyncio client, on an API server stand-in whose test
kubelet runs each pod on the same build podman: tests/kubernetes/)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import docker
import pytest

from bindery.builds.executors.engine import engine_client
from bindery.builds.executors.base import CANCELLED, TIMED_OUT, BuildExecutor, BuildSpec
from bindery.builds.build_logs import BuildLogs
from bindery.builds.queue import BuildJob
from bindery.builds.repo2docker_run import parse_line
from bindery.builds.runner import build_executor, build_spec, engine_executor
from bindery.settings import Settings
from tests.kubernetes.cluster import StandInCluster
from tests.kubernetes.kubelet import quantity_bytes
from tests.production.own_stack import wait_for

pytestmark = pytest.mark.stack

IMPLEMENTATIONS = ["engine", "kubernetes"]


class Subject:
    """One implementation under test, with the inspections the contract needs: does the build
    exist (a container, a pod), and which memory limit does the engine or cluster enforce."""

    def __init__(self, settings: Settings, make: Callable[[], BuildExecutor],
                 exists: Callable[[str], bool], memory_limit: Callable[[str], int]) -> None:
        self.settings = settings
        self.make = make
        self.exists = exists
        self.memory_limit = memory_limit
        self.logs = BuildLogs(settings.build_logs_path, settings.builds.build_log_max_bytes, 30, 2000)


def engine_subject(stack: Settings) -> Subject:
    def exists(name: str) -> bool:
        try:
            engine_client(stack.build_socket).containers.get(name)
            return True
        except docker.errors.NotFound:
            return False

    def memory_limit(name: str) -> int:
        container = engine_client(stack.build_socket).containers.get(name)
        return int(container.attrs["HostConfig"]["Memory"])

    return Subject(stack, lambda: engine_executor(stack), exists, memory_limit)


def kubernetes_subject(cluster: StandInCluster) -> Subject:
    def memory_limit(name: str) -> int:  # what the pod asks the cluster to enforce
        pod = cluster.pod(name)
        assert pod is not None, name
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        return quantity_bytes(limits["memory"])

    return Subject(cluster.settings, lambda: build_executor(cluster.settings),
                   lambda name: cluster.pod(name) is not None, memory_limit)


@pytest.fixture(params=IMPLEMENTATIONS)
def subject(request, stack: Settings) -> Iterator[Subject]:
    if request.param == "engine":
        yield engine_subject(stack)
    elif request.param == "kubernetes":
        with StandInCluster.around(stack) as cluster:
            yield kubernetes_subject(cluster)
    else:
        raise AssertionError(request.param)


@pytest.fixture
def spec_for(stack: Settings, git_repo_factory):
    """spec_for(dockerfile_lines, **settings) -> a BuildSpec of a fresh repository and image."""

    def make(dockerfile: str, **overrides: object) -> BuildSpec:
        tag = uuid.uuid4().hex[:8]
        # A label of its own first, so no step comes from the layer cache of an earlier run of
        # the same lines (another implementation's): every RUN really runs and prints.
        _, url = git_repo_factory(f"contract-{tag}", f"LABEL bindery.contract={tag}\n{dockerfile}")
        settings = stack.model_copy(update=overrides)
        job = BuildJob(image=f"{stack.registry.host}/bindery/contract-{tag}:test", repo=url,
                       commit=None, source=url)
        return build_spec(settings, job, "standard", {})

    return make


async def lines_of(lines: AsyncIterator[bytes]) -> str:
    return "".join([parse_line(raw).message async for raw in lines])


async def test_second_start_attaches_and_follows_from_the_start(subject, spec_for):
    spec = spec_for("RUN echo first-marker-$((6*7)) && sleep 3\nRUN echo second-marker-$((6*9))")
    first, second = subject.make(), subject.make()  # two executors: as two processes
    handle = await first.start(spec)
    assert not handle.attached
    # Joins only once the build has visibly started, so "from the start" is really tested.
    seen: list[str] = []

    async def follow_first() -> None:
        async for raw in first.follow(handle.name):
            seen.append(parse_line(raw).message)

    follower = asyncio.create_task(follow_first())
    await wait_for(lambda: any("first-marker-42" in m for m in seen), 180, "the first log line")
    assert "first-marker-42" in (await second.log_so_far(handle.name) or "")
    joined = await second.start(spec)
    assert joined.attached and joined.name == handle.name
    assert abs(joined.deadline - handle.deadline) < 1  # the build's own deadline, not a new one
    running = await second.running()
    assert [b.name for b in running].count(handle.name) == 1  # one build, not two
    log = await lines_of(second.follow(handle.name))
    assert "first-marker-42" in log and "second-marker-54" in log
    await follower
    assert await second.wait(joined) == 0
    assert await first.wait(handle) == 0  # the other waiter: same status, from the kept record
    # Finished: the container is gone, its log kept (as a person reads it) with its status.
    assert not subject.exists(handle.name)
    assert await second.log_so_far(handle.name) is None  # not running any more: the kept log
    kept = subject.logs.text(handle.name)
    assert kept is not None and "first-marker-42" in kept and "second-marker-54" in kept
    record = subject.logs.record(handle.name)
    assert record is not None and record.status == 0 and record.image == spec.image


async def test_running_lists_builds_with_their_repository_and_memory_limit(subject, spec_for):
    spec = spec_for("RUN sleep 60", build_memory_limit="300M")
    executor = subject.make()
    handle = await executor.start(spec)
    try:
        running = {b.name: b for b in await executor.running()}
        assert running[handle.name].image == spec.image
        assert running[handle.name].repo == spec.repo
        assert subject.memory_limit(handle.name) == 300 * 1024 * 1024
        assert "--build-memory-limit" in spec.argv and "300M" in spec.argv
    finally:
        await executor.cancel(handle.name, "the test is over")
    # Cancel removes it; the log so far is kept, saying why it ended.
    assert not subject.exists(handle.name)
    assert handle.name not in {b.name for b in await executor.running()}
    assert "the test is over" in (subject.logs.text(handle.name) or "")
    assert await executor.wait(handle) == CANCELLED


async def test_timeout_stops_and_removes_the_build(subject, spec_for):
    spec = spec_for("RUN echo started-$((2*21)) && sleep 300", build_timeout=20)
    executor = subject.make()
    handle = await executor.start(spec)
    t0 = time.monotonic()
    assert await executor.wait(handle) == TIMED_OUT
    assert time.monotonic() - t0 < 60  # at the deadline, not when the build would have ended
    assert not subject.exists(handle.name)
    assert "time limit" in (subject.logs.text(handle.name) or "")


async def test_a_build_nobody_waits_for_is_removed_with_its_log_kept(subject, spec_for):
    spec = spec_for("RUN echo orphan-$((3*14))")
    executor = subject.make()
    handle = await executor.start(spec)  # its starter "dies": nobody follows or waits
    del executor

    other = subject.make()  # another process, listing builds for its slots

    async def reaped() -> bool:
        return handle.name not in {b.name for b in await other.running()} \
            and not subject.exists(handle.name)

    await wait_for(reaped, 180, "the ended build reaped by another executor's listing", 1.0)
    assert "orphan-42" in (subject.logs.text(handle.name) or "")
    record = subject.logs.record(handle.name)
    assert record is not None and record.status == 0

