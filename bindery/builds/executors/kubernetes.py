"""Builds as named pods on Kubernetes (the executor contract: build/executor.py).

As BinderHub does, a build is a pod named from its image (bindery/builds/executors/build_pod.py makes it), so
any bindery replica, or one restarted, finds it: a create answered 409 means the build exists and
the caller attaches to it, reading the build's deadline back from the pod's annotation. Its log is
the pod's log (pods/log, followed from the start); its end is the pod's phase, its exit status the
build container's. The cluster enforces the memory limit (resources.limits) and the timeout
(activeDeadlineSeconds); ``wait`` also deletes the pod at the deadline. Cancelling deletes the pod;
finished pods are deleted by whoever sees them end first, their log kept (BuildLogs), as the engine
executor does with containers.

Every API request has a timeout (k8s_timeout; a followed log only for connecting: it lasts as long
as the build, and its reader bounds it by the deadline); every poll and retry is bounded. ``wait``
polls the pod once a second. The API calls used (RBAC): pods create, get, list, delete, and
pods/log get, in one namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from bindery.backoff import WaitTimeout, wait_until_async
from bindery.builds.executors.engine import OUT_OF_MEMORY
from bindery.builds.executors.base import (CANCELLED, TIMED_OUT, BuildExecutor, BuildHandle, BuildSpec,
                                    RunningBuild)
from bindery.builds.executors.build_pod import (ANNOTATION, BUILD_CONTAINER, PROXY_VARIABLES, SELECTOR,
                                   PodOptions, build_pod)
from bindery.builds.build_logs import BuildLogs, kept_status
from bindery.builds.repo2docker_run import output_lines, parse_line
from bindery.kube_client import Cluster, api_client
from bindery.settings import Settings

NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
POLL = 1.0  # seconds between two looks at a pod's phase
API_FAILURES = 5  # consecutive failed requests while waiting before giving up
# A build container waiting for one of these will not start by itself: the build has failed.
CANNOT_START = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                "CreateContainerConfigError", "CreateContainerError")
REAP_AFTER = 5.0  # seconds an ended pod is left to its follower before a listing reaps it
ENDED = ("Succeeded", "Failed")


def api_error(exc: ApiException) -> str:
    """The API's answer in words: its status and the Status object's message."""
    try:
        message = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        message = str(exc.body or "")[:300]
    return f"{exc.status} {exc.reason}: {message}".strip(": ")


class KubernetesExecutor(BuildExecutor):
    def __init__(self, api_url: str, namespace: str, options: PodOptions, logs: BuildLogs,
                 timeout: float) -> None:
        self.api_url = api_url
        self.namespace = namespace or NAMESPACE_FILE.read_text().strip()
        self.options = options
        self.logs = logs
        self.timeout = timeout
        self._api_client: k8s.ApiClient | None = None
        self._ended: dict[str, float] = {}  # ended pods seen by running(): name -> first seen

    @classmethod
    def from_settings(cls, settings: Settings, logs: BuildLogs) -> KubernetesExecutor:
        return cls(settings.kubernetes.k8s_api_url, settings.kubernetes.k8s_namespace,
                   PodOptions.from_settings(settings), logs, settings.kubernetes.k8s_timeout)

    async def _core(self) -> k8s.CoreV1Api:
        """The API client, made on first use (inside the event loop its session belongs to)."""
        if self._api_client is None:
            self._api_client = await api_client(Cluster(api_url=self.api_url))
        return k8s.CoreV1Api(self._api_client)

    def _as_json(self, model: object) -> dict[str, Any]:
        """An API model as the API's own JSON (camelCase keys), as build_pod writes pods."""
        assert self._api_client is not None
        return self._api_client.sanitize_for_serialization(model)

    async def _read(self, name: str) -> dict[str, Any] | None:
        """The pod as JSON, or None when there is none."""
        try:
            pod = await (await self._core()).read_namespaced_pod(name, self.namespace,
                                                         _request_timeout=self.timeout)
            return self._as_json(pod)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    # -- start / attach ---------------------------------------------------------------------------
    async def start(self, spec: BuildSpec) -> BuildHandle:
        deadline = time.time() + spec.timeout
        proxies = {n: os.environ[n] for n in PROXY_VARIABLES if n in os.environ}
        try:
            pod = build_pod(spec, self.options, deadline, proxies)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        for _ in range(2):  # bounded: a second try only after a dying namesake is gone
            try:
                await (await self._core()).create_namespaced_pod(self.namespace, pod,
                                                         _request_timeout=self.timeout)
                return BuildHandle(spec.name, deadline, attached=False)
            except ApiException as exc:
                if exc.status != 409:
                    raise RuntimeError(f"Kubernetes refused the build pod: {api_error(exc)}") \
                        from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise RuntimeError("the Kubernetes API is not answering, so the build could not "
                                   f"run; please try again later ({exc!r})") from None
            existing = await self._read(spec.name)  # 409: someone's build of this image
            if existing is None:
                continue  # removed between the two requests: create it after all
            meta = existing.get("metadata", {})
            if meta.get("deletionTimestamp"):  # cancelled or finished: a new build after it
                await self._gone(spec.name)
                continue
            return BuildHandle(spec.name, recorded_deadline(existing, deadline), attached=True)
        raise RuntimeError(f"the build pod {spec.name} is still being removed; please try again")

    async def _gone(self, name: str) -> None:
        """Wait (bounded) until the pod no longer exists."""
        async def gone() -> bool:
            return await self._read(name) is None

        with contextlib.suppress(WaitTimeout):  # the caller finds the pod still there and says so
            await wait_until_async(gone, timeout=3 * self.timeout, what=f"build pod {name} removed", interval=POLL)

    # -- follow -----------------------------------------------------------------------------------
    async def follow(self, name: str) -> AsyncIterator[bytes]:
        pod = await self._started(name)
        if pod is None:  # already ended and removed: its kept log
            for line in self._kept_lines(name):
                yield line
            return
        if pod.get("status", {}).get("phase") == "Pending":
            return  # never started: wait() says why
        # No total timeout: a build's log runs as long as the build (the caller bounds it).
        stream_timeout = aiohttp.ClientTimeout(connect=self.timeout, sock_connect=self.timeout)
        response = await (await self._core()).read_namespaced_pod_log(
            name, self.namespace, container=BUILD_CONTAINER, follow=True,
            _preload_content=False, _request_timeout=stream_timeout)
        if response.status == 404:  # deleted meanwhile: its kept log
            response.release()
            for line in self._kept_lines(name):
                yield line
            return
        if response.status != 200:
            body = (await response.text())[:300]
            response.release()
            raise RuntimeError(f"Kubernetes refused the build's log: {response.status} {body}")
        try:
            async for line in output_lines(response.content.iter_any()):
                yield line
        except aiohttp.ClientError:
            pass  # the pod was deleted (cancel, deadline) while we read: its log ends here
        finally:
            response.release()

    def _kept_lines(self, name: str) -> list[bytes]:
        return [line.encode() for line in (self.logs.text(name) or "").splitlines(keepends=True)]

    async def _started(self, name: str) -> dict[str, Any] | None:
        """The pod once its build container has started, ended or cannot start; None when it
        does not exist. The API refuses the log of a container that has not started (pulling)."""
        while True:
            pod = await self._read(name)
            if pod is None or pod.get("status", {}).get("phase") != "Pending" \
                    or cannot_start(pod) or time.time() > recorded_deadline(pod):
                return pod
            await asyncio.sleep(POLL)

    async def log_so_far(self, name: str) -> str | None:
        """A running build's log as a person reads it, or None when there is no such build."""
        raw = await self._log(name)
        if raw is None:
            return None
        return readable(raw)

    async def _log(self, name: str) -> str | None:
        try:
            return await (await self._core()).read_namespaced_pod_log(
                name, self.namespace, container=BUILD_CONTAINER, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status == 400 and await self._read(name) is not None:
                return ""  # exists, its container not started yet
            raise

    # -- end --------------------------------------------------------------------------------------
    async def wait(self, handle: BuildHandle) -> int:
        failures = 0
        while True:
            if time.time() >= handle.deadline:
                await self._stop(handle.name, TIMED_OUT, "the build reached its time limit")
                return TIMED_OUT
            try:
                pod = await self._read(handle.name)
                failures = 0
            except (ApiException, aiohttp.ClientError, TimeoutError):
                failures += 1
                if failures >= API_FAILURES:
                    raise RuntimeError("the Kubernetes API stopped answering while the build "
                                       "ran") from None
                await asyncio.sleep(POLL)
                continue
            if pod is None:  # already removed by whoever saw it end first: its record
                return await kept_status(self.logs, handle.name)
            status = pod_status(pod)
            if status is not None:
                note = "[bindery] the build was stopped: the build reached its time limit\n" \
                    if status == TIMED_OUT else ""
                await self._finish(handle.name, status, note)
                return status
            why = cannot_start(pod)
            if why:
                await self._stop(handle.name, 1, f"the build pod cannot start: {why}")
                raise RuntimeError(f"the build pod cannot start: {why}")
            await asyncio.sleep(min(POLL, max(0.0, handle.deadline - time.time())))

    async def cancel(self, name: str, reason: str = "cancelled") -> None:
        await self._stop(name, CANCELLED, reason)

    async def _stop(self, name: str, status: int, reason: str) -> None:
        await self._finish(name, status, f"[bindery] the build was stopped: {reason}\n")

    async def _finish(self, name: str, status: int, note: str = "") -> None:
        """Keep the ended (or stopped) build's log, then delete its pod (idempotent across
        processes: whoever deletes second finds nothing)."""
        pod = await self._read(name)
        if pod is None:
            return  # another process kept and deleted it
        raw = await self._log(name) or ""
        text = readable(raw)
        image = (pod["metadata"].get("annotations") or {}).get(f"{ANNOTATION}/image", "")
        self.logs.keep(name, image, text + note, status)
        try:
            await (await self._core()).delete_namespaced_pod(name, self.namespace, grace_period_seconds=0,
                                                     _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status != 404:
                raise

    # -- listing ----------------------------------------------------------------------------------
    async def running(self) -> list[RunningBuild]:
        listed = await (await self._core()).list_namespaced_pod(
            self.namespace, label_selector=SELECTOR, _request_timeout=self.timeout)
        pods = self._as_json(listed).get("items", [])
        alive = []
        for pod in pods:
            meta = pod["metadata"]
            name = meta["name"]
            annotations = meta.get("annotations") or {}
            status = pod_status(pod)
            if meta.get("deletionTimestamp"):
                continue  # being removed: no longer holds a slot
            if status is None:
                alive.append(RunningBuild(name, annotations.get(f"{ANNOTATION}/image", ""),
                                          annotations.get(f"{ANNOTATION}/repo", "")))
                continue
            # Ended with nobody waiting (its bindery died): keep its log, delete it.
            first_seen = self._ended.setdefault(name, time.monotonic())
            if time.monotonic() - first_seen < REAP_AFTER:
                continue  # whoever follows it may still be reading its last lines
            self._ended.pop(name, None)
            try:
                await self._finish(name, status)
            except (ApiException, aiohttp.ClientError, TimeoutError):
                pass  # the API is busy: the next listing tries again
        listed = {p["metadata"]["name"] for p in pods}
        self._ended = {n: t for n, t in self._ended.items() if n in listed}
        return alive

    async def aclose(self) -> None:
        await self.finishing()  # builds ended by their success line are still being waited for
        if self._api_client is not None:
            await self._api_client.close()
            self._api_client = None


def readable(raw: str) -> str:
    """A build log as a person reads it (repo2docker's JSON lines as their messages)."""
    return "".join(parse_line(line.encode()).message for line in raw.splitlines())


def recorded_deadline(pod: dict[str, Any], default: float = float("inf")) -> float:
    """The build's deadline as its starter recorded it on the pod."""
    recorded = (pod["metadata"].get("annotations") or {}).get(f"{ANNOTATION}/deadline")
    return float(recorded) if recorded else default


def cannot_start(pod: dict[str, Any]) -> str:
    """Why the build container will not start by itself ("" while it may)."""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if container.get("name") == BUILD_CONTAINER and waiting.get("reason") in CANNOT_START:
            return f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
    return ""


def pod_status(pod: dict[str, Any]) -> int | None:
    """The build's exit status once its pod has ended (None while it runs)."""
    status = pod.get("status") or {}
    if status.get("phase") not in ENDED:
        return None
    if status.get("reason") == "DeadlineExceeded":  # activeDeadlineSeconds: the cluster ended it
        return TIMED_OUT
    for container in status.get("containerStatuses") or []:
        if container.get("name") != BUILD_CONTAINER:
            continue
        terminated = (container.get("state") or {}).get("terminated") or {}
        if terminated.get("reason") == "OOMKilled":
            return OUT_OF_MEMORY
        if "exitCode" in terminated:
            return int(terminated["exitCode"])
    return 0 if status.get("phase") == "Succeeded" else 1
