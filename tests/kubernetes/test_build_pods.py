"""What only the Kubernetes executor meets, on the stand-in cluster with real containers: a build
pod whose image cannot be pulled fails the build at once, in words, instead of hanging until its
deadline (a kubelet keeps such a pod Pending for ever)."""

from __future__ import annotations

import time
import uuid

import pytest

from bindery.builds.queue import BuildJob
from bindery.builds.runner import build_executor, build_logs, build_spec
from bindery.settings import Settings
from tests.kubernetes.cluster import StandInCluster

pytestmark = pytest.mark.stack


async def test_a_build_image_that_cannot_be_pulled_fails_the_build_in_words(
        stack: Settings) -> None:
    with StandInCluster.around(stack, k8s_builder_image="localhost/bindery/no-such:1") as cluster:
        tag = uuid.uuid4().hex[:8]
        job = BuildJob(image=f"{stack.registry.host}/bindery/pull-{tag}:1", repo="r",
                       commit=None, source="https://example.org/r")
        spec = build_spec(cluster.settings, job, "standard", {})
        executor = build_executor(cluster.settings)
        try:
            handle = await executor.start(spec)
            t0 = time.monotonic()
            assert [line async for line in executor.follow(handle.name)] == []
            with pytest.raises(RuntimeError, match="cannot start: ErrImagePull"):
                await executor.wait(handle)
            assert time.monotonic() - t0 < 60  # not the build's deadline (an hour)
            assert cluster.pod(handle.name) is None  # deleted, its note kept
            assert "cannot start: ErrImagePull" in (build_logs(stack).text(handle.name) or "")
        finally:
            await executor.aclose()
