"""A test-side "kubelet": runs the pods of the API stand-in (tests/kubernetes/apiserver.py) as real
containers on the session stack's build podman, so the Kubernetes executor's contract tests are
real builds: repo2docker in bindery's build image, its real log, a real memory limit.

From each pod's spec it honours what a build pod uses: the container's image, command, args, env,
workingDir; resources.limits.memory (the engine enforces it; an OOM kill is reported as the
kubelet does, reason OOMKilled); hostPath volumes, mapped to paths of this machine (the node's
engine socket → the build podman's socket); emptyDir volumes (a fresh folder each);
readOnlyRootFilesystem, capabilities.drop, allowPrivilegeEscalation; activeDeadlineSeconds (the
pod fails with reason DeadlineExceeded). Host networking, as the engine executor's build
containers have. Phase and the container's exit code are written back to the pod's status; the
container and its folders are removed when the pod is deleted.

Not run here (a pod asking for them fails with a message): secret volumes and init containers
(the podman sidecar); their pod specs are checked by unit tests and schema validation instead.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions

from bindery.builds.executors.engine import engine_client, gone

UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "k": 1000, "M": 1000**2, "G": 1000**3}
LABEL = "bindery.test-kubelet"


def quantity_bytes(quantity: str) -> int:
    for suffix, unit in UNITS.items():
        if quantity.endswith(suffix):
            return int(quantity.removesuffix(suffix)) * unit
    return int(quantity)


def now() -> str:
    return datetime.now(UTC).isoformat()


class Kubelet:
    def __init__(self, docker_host: str, host_paths: dict[str, str], work_dir: Path) -> None:
        self.docker_host = docker_host
        self.client = engine_client(docker_host)
        self.id = uuid.uuid4().hex[:8]  # labels this kubelet's containers
        self.host_paths = host_paths  # a hostPath in a pod spec -> the path on this machine
        self.work_dir = work_dir
        self._tasks: set[asyncio.Task] = set()
        self._created: list[str] = []  # container names, for close()

    @staticmethod
    def container_name(pod: dict[str, Any]) -> str:
        meta = pod["metadata"]
        return f"kubelet-{meta['namespace']}-{meta['name']}-{meta['uid'][:8]}"

    def admit(self, pod: dict[str, Any], set_status: Callable[[dict[str, Any]], None]) -> None:
        task = asyncio.get_running_loop().create_task(self._run(pod, set_status))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- one pod's life ---------------------------------------------------------------------------
    async def _run(self, pod: dict[str, Any], set_status: Callable[[dict[str, Any]], None]) -> None:
        spec = pod["spec"]
        started = time.monotonic()
        deadline = spec.get("activeDeadlineSeconds")
        refusal = self._unsupported(spec)
        if refusal:
            set_status({"phase": "Failed", "reason": "Unsupported", "message": refusal})
            return
        container_spec = spec["containers"][0]
        try:
            image_id = await asyncio.to_thread(self._create, pod, container_spec)
        except docker.errors.ImageNotFound as exc:  # the kubelet keeps the pod Pending, saying so
            set_status({"phase": "Pending", "containerStatuses": [
                {"name": container_spec["name"], "ready": False, "restartCount": 0,
                 "image": container_spec["image"], "imageID": "",
                 "state": {"waiting": {"reason": "ErrImagePull", "message": str(exc)}}}]})
            return
        except docker.errors.APIError as exc:
            set_status({"phase": "Failed", "reason": "CreateContainerError", "message": str(exc)})
            return
        set_status({"phase": "Running", "startTime": now(), "containerStatuses": [
            {"name": container_spec["name"], "ready": True, "restartCount": 0,
             "image": container_spec["image"], "imageID": image_id,
             "state": {"running": {"startedAt": now()}}}]})
        remaining = None if deadline is None else deadline - (time.monotonic() - started)
        name = self.container_name(pod)
        try:
            code = await asyncio.to_thread(self._wait, name, remaining)
        except (docker.errors.APIError, requests.exceptions.ConnectionError):
            return  # the pod was deleted (its container removed) while it ran
        state = await asyncio.to_thread(self._state, name)
        if state is None:
            return
        if code is None:  # past activeDeadlineSeconds: kill it, as the kubelet does
            await asyncio.to_thread(self._kill, name)
            set_status(self._ended(container_spec, image_id, "Failed", 137, "Error",
                                   reason="DeadlineExceeded",
                                   message=f"Pod was active on the node longer than the "
                                           f"specified deadline ({deadline} s)"))
            return
        reason = "OOMKilled" if state.get("OOMKilled") else ("Completed" if code == 0 else "Error")
        set_status(self._ended(container_spec, image_id, "Succeeded" if code == 0 else "Failed",
                               code, reason))

    @staticmethod
    def _ended(container_spec: dict[str, Any], image_id: str, phase: str, code: int,
               container_reason: str, **pod_fields: str) -> dict[str, Any]:
        return {"phase": phase, **pod_fields, "containerStatuses": [
            {"name": container_spec["name"], "ready": False, "restartCount": 0,
             "image": container_spec["image"], "imageID": image_id,
             "state": {"terminated": {"exitCode": code, "reason": container_reason,
                                      "finishedAt": now()}}}]}

    @staticmethod
    def _unsupported(spec: dict[str, Any]) -> str:
        if spec.get("initContainers"):
            return "the test kubelet does not run init containers (sidecars)"
        if len(spec["containers"]) != 1:
            return "the test kubelet runs pods of one container"
        kinds = {k for v in spec.get("volumes", []) for k in v if k != "name"}
        if kinds - {"hostPath", "emptyDir"}:
            return f"the test kubelet does not mount {sorted(kinds - {'hostPath', 'emptyDir'})}"
        return ""

    def _create(self, pod: dict[str, Any], container: dict[str, Any]) -> str:
        """Create and start the pod's container; its image's id."""
        spec = pod["spec"]
        sources: dict[str, str] = {}
        for volume in spec.get("volumes", []):
            if "hostPath" in volume:
                path = volume["hostPath"]["path"]
                sources[volume["name"]] = self.host_paths.get(path, path)
            else:  # emptyDir: a fresh folder of this pod's
                folder = self.work_dir / self.container_name(pod) / volume["name"]
                folder.mkdir(parents=True)
                sources[volume["name"]] = str(folder)
        binds = {sources[m["name"]]: {"bind": m["mountPath"],
                                      "mode": "ro" if m.get("readOnly") else "rw"}
                 for m in container.get("volumeMounts", [])}
        security = container.get("securityContext") or {}
        limits = (container.get("resources") or {}).get("limits") or {}
        self._created.append(self.container_name(pod))
        created = self.client.containers.create(
            container["image"], [*container.get("command", []), *container.get("args", [])],
            name=self.container_name(pod), labels={LABEL: self.id},
            environment={e["name"]: e["value"] for e in container.get("env", [])},
            working_dir=container.get("workingDir"), network_mode="host", volumes=binds,
            mem_limit=quantity_bytes(limits["memory"]) if "memory" in limits else None,
            read_only=bool(security.get("readOnlyRootFilesystem")),
            cap_drop=(security.get("capabilities") or {}).get("drop"),
            security_opt=["no-new-privileges"]
            if security.get("allowPrivilegeEscalation") is False else None)
        created.start()
        return str(created.attrs.get("Image", ""))

    def _wait(self, name: str, timeout: float | None) -> int | None:
        """The exit code, or None when the timeout passed first."""
        if timeout is not None and timeout <= 0:
            return None
        client = engine_client(self.docker_host, timeout=(timeout or 24 * 3600) + 5)
        try:
            return int(client.containers.get(name).wait(timeout=timeout)["StatusCode"])
        except requests.exceptions.ReadTimeout:
            return None
        finally:
            client.close()

    def _state(self, name: str) -> dict[str, Any] | None:
        try:
            return self.client.containers.get(name).attrs.get("State", {})
        except docker.errors.APIError as exc:
            if gone(exc):
                return None
            raise

    def _kill(self, name: str) -> None:
        try:
            self.client.api.kill(name)
        except docker.errors.APIError:
            pass  # ended meanwhile

    # -- logs and removal -------------------------------------------------------------------------
    async def log(self, pod: dict[str, Any], follow: bool) -> Iterator[bytes] | None:
        """The container's output (a blocking iterator, read in a thread by the server), or None
        while the container has not started."""
        if pod["status"].get("phase") == "Pending":
            return None
        name = self.container_name(pod)
        try:
            if follow:
                return await asyncio.to_thread(self.client.api.logs, name, stdout=True,
                                               stderr=True, stream=True, follow=True)
            return iter([await asyncio.to_thread(self.client.api.logs, name, stdout=True,
                                                 stderr=True)])
        except docker.errors.APIError as exc:
            if gone(exc):
                return iter([])
            raise

    async def remove(self, pod: dict[str, Any]) -> None:
        await asyncio.to_thread(self.remove_now, pod)

    def remove_now(self, pod: dict[str, Any]) -> None:
        name = self.container_name(pod)
        try:
            self.client.api.remove_container(name, force=True)
        except docker.errors.APIError as exc:
            if not gone(exc):
                raise
        shutil.rmtree(self.work_dir / name, ignore_errors=True)

    def close(self) -> None:
        """Remove every container this kubelet made (by name: podman may fail a listing while
        it removes one)."""
        for name in self._created:
            try:
                self.client.api.remove_container(name, force=True)
            except docker.errors.APIError as exc:
                if not gone(exc):
                    raise
        self.client.close()





def new_work_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="kubelet-"))
