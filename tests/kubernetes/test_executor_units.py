"""The Kubernetes executor's own decisions, without a stack: a pod's phase and container state read
as the build's exit status, and an API that does not answer (or refuses) said in words, in time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from bindery.builds.executors.engine import OUT_OF_MEMORY
from bindery.builds.executors.base import TIMED_OUT, BuildSpec
from bindery.builds.executors.build_pod import PodOptions
from bindery.builds.executors.kubernetes import KubernetesExecutor, api_error, cannot_start, pod_status
from bindery.builds.build_logs import BuildLogs


def pod(phase: str, pod_reason: str = "", **terminated: object) -> dict:
    status: dict = {"phase": phase}
    if pod_reason:
        status["reason"] = pod_reason
    if terminated:
        status["containerStatuses"] = [{"name": "build", "state": {"terminated": terminated}}]
    return {"status": status}


@pytest.mark.parametrize(("the_pod", "status"), [
    (pod("Pending"), None),
    (pod("Running"), None),
    (pod("Succeeded", exitCode=0, reason="Completed"), 0),
    (pod("Failed", exitCode=1, reason="Error"), 1),
    (pod("Failed", exitCode=137, reason="OOMKilled"), OUT_OF_MEMORY),
    (pod("Failed", "DeadlineExceeded"), TIMED_OUT),  # activeDeadlineSeconds: the cluster ended it
    (pod("Failed", "Evicted"), 1),  # no container state: failed, not success
])
def test_a_pods_end_is_the_builds_status(the_pod: dict, status: int | None) -> None:
    assert pod_status(the_pod) == status


def executor(url: str, tmp_path: Path, timeout: float = 3.0, **options: object) -> KubernetesExecutor:
    return KubernetesExecutor(url, "builds", PodOptions(builder_image="b:1", **options),
                              BuildLogs(tmp_path / "logs", 10_000, 1, 10), timeout)


SPEC = BuildSpec(image="registry.example.org/bindery/r:1", repo="https://example.org/r",
                 argv=["--no-run", "https://example.org/r"])


async def test_an_api_that_does_not_answer_fails_the_start_in_words_within_the_timeout(
        tmp_path: Path) -> None:
    unreachable = executor("http://127.0.0.1:9", tmp_path)  # nothing listens on the discard port
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="Kubernetes API is not answering"):
        await unreachable.start(SPEC)
    assert time.monotonic() - t0 < 30
    await unreachable.aclose()


async def test_a_local_folder_is_refused_before_any_request(tmp_path: Path) -> None:
    local = BuildSpec(image="i:1", repo="r", argv=[], mounts=("/srv/x",))
    with pytest.raises(RuntimeError, match="local folder"):
        await executor("http://127.0.0.1:9", tmp_path).start(local)


def test_a_container_that_cannot_start_is_told_from_one_still_pulling() -> None:
    def waiting(reason: str) -> dict:
        return {"status": {"phase": "Pending", "containerStatuses": [
            {"name": "build", "state": {"waiting": {"reason": reason, "message": "no such"}}}]}}
    assert cannot_start(waiting("ContainerCreating")) == ""
    assert cannot_start(waiting("ErrImagePull")) == "ErrImagePull: no such"
    assert cannot_start(waiting("ImagePullBackOff")).startswith("ImagePullBackOff")
    assert cannot_start({"status": {"phase": "Pending"}}) == ""


def test_the_apis_refusal_is_said_with_its_own_message() -> None:
    refusal = ApiException(status=403, reason="Forbidden")
    refusal.body = json.dumps({"kind": "Status", "message": 'pods is forbidden: User '
                               '"system:serviceaccount:b:bindery" cannot create resource "pods"'})
    assert api_error(refusal) == ('403 Forbidden: pods is forbidden: User '
                                  '"system:serviceaccount:b:bindery" cannot create resource "pods"')
