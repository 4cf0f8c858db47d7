"""Builds as named containers on the build engine (the executor contract: build/executor.py).

repo2docker runs in a container of the build image (bindery/stack/builder_image.py) with the build
engine's Docker-API socket mounted, as BinderHub's build pods have the node's socket, and host
networking, so it reaches the same git servers and registry a build on the host would. The
container is named from the image (any bindery process finds it), labelled with its image,
repository and deadline (the truth for slots across processes), memory-limited by the engine, and
wrapped in `timeout` so it ends even when no bindery process is left to stop it at its deadline.
Finished containers are removed by whoever sees them end first; their log is kept (BuildLogs).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator

import docker
import docker.errors
import requests.exceptions

from bindery.backoff import WaitTimeout, wait_until
from bindery.builds.executors.base import (CANCELLED, TIMED_OUT, BuildExecutor, BuildHandle, BuildSpec,
                                    RunningBuild)
from bindery.builds.build_logs import BuildLogs, kept_status
from bindery.builds.repo2docker_run import MAX_LINE, output_lines, parse_line
from bindery.engine_clients import docker_client

API_VERSION = "1.41"  # podman's Docker API; fixed so creating a client never calls the engine
API_TIMEOUT = 30.0
START_GRACE = 30.0  # a created container another process is starting must run within this
SELF_TIMEOUT_GRACE = 60  # the in-container `timeout` fires this long after the deadline
OUT_OF_MEMORY = -3  # exit status `wait` reports when the engine killed the build for memory
LABEL = "bindery.builds"
REAP_AFTER = 5.0  # seconds an ended build is left to its follower before a listing reaps it


def gone(exc: Exception) -> bool:
    """The container does not exist (any more). podman answers 500 rather than 404 when another
    process removes it between two calls, saying so in the message."""
    return isinstance(exc, docker.errors.NotFound) or (
        isinstance(exc, docker.errors.APIError) and "no such container" in str(exc).lower())


def engine_client(docker_host: str, timeout: float = API_TIMEOUT) -> docker.DockerClient:
    """The build engine's client, from the one factory (bindery/engine_clients.py)."""
    return docker_client(docker_host, timeout, version=API_VERSION)


ALIVE = ("running", "created", "paused", "restarting")  # a build container's states before its end


def _exit_status(container) -> int:
    """How an ended build container ended: its exit code, or OUT_OF_MEMORY."""
    state = container.attrs.get("State", {})
    return OUT_OF_MEMORY if state.get("OOMKilled") else int(state.get("ExitCode", -1))


class EngineExecutor(BuildExecutor):
    def __init__(self, docker_host: str, build_image: str, stack_id: str, logs: BuildLogs) -> None:
        self.docker_host = docker_host
        self.build_image = build_image
        self.stack_id = stack_id
        self.logs = logs
        self.client = engine_client(docker_host)
        self._ended: dict[str, float] = {}  # ended builds seen by running(): name -> first seen

    # -- start / attach ---------------------------------------------------------------------------
    async def start(self, spec: BuildSpec) -> BuildHandle:
        try:
            return await asyncio.to_thread(self._start, spec)
        except requests.exceptions.ConnectionError as exc:
            raise RuntimeError("the build engine (container engine) is not answering, so the "
                               f"build could not run; please try again later ({exc})") from exc

    def _start(self, spec: BuildSpec) -> BuildHandle:
        existing = self._attach(spec.name)
        if existing is not None:
            return existing
        deadline = time.time() + spec.timeout
        env = {**spec.env, "DOCKER_HOST": self.docker_host, "HOME": "/tmp", "LANG": "C.UTF-8"}
        for name in ("http_proxy", "https_proxy", "no_proxy"):
            if name in os.environ:
                env[name] = os.environ[name]
        volumes = {}
        if self.docker_host.startswith("unix://"):
            sock = self.docker_host.removeprefix("unix://")
            volumes[sock] = {"bind": sock, "mode": "rw"}
        for folder in spec.mounts:
            volumes[folder] = {"bind": folder, "mode": "ro"}
        command = ["timeout", "-s", "KILL", str(int(spec.timeout) + SELF_TIMEOUT_GRACE),
                   "repo2docker", *spec.argv]
        labels = {LABEL: "1", f"{LABEL}.stack": self.stack_id, f"{LABEL}.image": spec.image,
                  f"{LABEL}.repo": spec.repo, f"{LABEL}.deadline": f"{deadline:.3f}"}
        try:
            container = self.client.containers.create(
                self.build_image, command, name=spec.name, labels=labels, environment=env,
                network_mode="host", mem_limit=spec.memory_limit, volumes=volumes,
                working_dir="/tmp", stdin_open=False, tty=False)
        except docker.errors.APIError as exc:
            attached = self._attach(spec.name)  # another process created it first: join it
            if attached is not None:
                return attached
            raise RuntimeError(f"the build engine refused the build container: {exc}") from exc
        try:
            container.start()
        except docker.errors.APIError as exc:
            self._remove(spec.name)
            raise RuntimeError(f"the build engine could not start the build container: {exc}") \
                from exc
        return BuildHandle(spec.name, deadline, attached=False)

    def _attach(self, name: str) -> BuildHandle | None:
        container = None

        def settled() -> bool:
            nonlocal container
            try:
                container = self.client.containers.get(name)
            except docker.errors.APIError as exc:
                if gone(exc):
                    container = None
                    return True
                raise
            return container.status != "created"

        # bounded: another process is between create and start; still "created" at the bound: attached as it is
        with contextlib.suppress(WaitTimeout):
            wait_until(settled, timeout=START_GRACE, interval=0.2, what=f"build container {name} started")
        if container is None:
            return None
        if container.status not in ALIVE and _exit_status(container) != 0:
            # A build that failed with nobody there to see it end (its follower lost the
            # engine, or died): its log is kept, and this request builds again rather than
            # report that old failure as its own. (One that succeeded is joined: it pushed.)
            self._finish(name, _exit_status(container))
            return None
        deadline = float(container.labels.get(f"{LABEL}.deadline", time.time()))
        return BuildHandle(name, deadline, attached=True)

    # -- follow -----------------------------------------------------------------------------------
    async def follow(self, name: str) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        try:
            stream = await asyncio.to_thread(
                self.client.api.logs, name, stdout=True, stderr=True, stream=True, follow=True)
        except docker.errors.APIError as exc:
            if not gone(exc):
                raise
            for line in (self.logs.text(name) or "").splitlines(keepends=True):
                yield line.encode()  # already ended and removed: its kept log
            return

        def pump() -> None:
            try:
                for chunk in stream:
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except Exception as exc:  # closed by us, or the engine went away
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                item = await queue.get()
                if item is None or isinstance(item, BaseException):
                    return
                yield item

        threading.Thread(target=pump, name=f"logs-{name}", daemon=True).start()
        try:
            async for line in output_lines(chunks()):
                yield line
        finally:
            stream.close()

    async def log_so_far(self, name: str) -> str | None:
        """A running build's log as a person reads it, or None when there is no such build."""
        def read() -> str | None:
            try:
                stream = self.client.api.logs(name, stdout=True, stderr=True, stream=True, follow=False)
            except docker.errors.APIError as exc:
                if gone(exc):
                    return None
                raise
            return self._tail(stream)
        return await asyncio.to_thread(read)

    # -- end --------------------------------------------------------------------------------------
    async def wait(self, handle: BuildHandle) -> int:
        remaining = handle.deadline - time.time()
        if remaining <= 0:
            await self._stop(handle.name, TIMED_OUT, "the build reached its time limit")
            return TIMED_OUT
        try:
            status = await asyncio.to_thread(self._wait, handle.name, remaining)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            if time.time() < handle.deadline:
                raise RuntimeError("the build engine stopped answering while the build ran")
            await self._stop(handle.name, TIMED_OUT, "the build reached its time limit")
            return TIMED_OUT
        if status is None:  # already removed by whoever saw it end first: its record
            return await kept_status(self.logs, handle.name)
        return status

    def _wait(self, name: str, timeout: float) -> int | None:
        client = engine_client(self.docker_host, timeout=timeout + 5)
        try:
            container = client.containers.get(name)
            status = int(container.wait(timeout=timeout).get("StatusCode", -1))
        except docker.errors.APIError as exc:
            if gone(exc):
                return None
            raise
        finally:
            client.close()
        try:
            container.reload()
            if container.attrs.get("State", {}).get("OOMKilled"):
                status = OUT_OF_MEMORY
        except docker.errors.APIError as exc:
            if not gone(exc):
                raise
        self._finish(name, status)
        return status

    async def cancel(self, name: str, reason: str = "cancelled") -> None:
        await self._stop(name, CANCELLED, reason)

    async def _stop(self, name: str, status: int, reason: str) -> None:
        def stop() -> None:
            try:
                self.client.api.kill(name)
            except docker.errors.APIError:
                pass  # not running (any more), or gone: _finish copes
            self._finish(name, status, f"[bindery] the build was stopped: {reason}\n")
        await asyncio.to_thread(stop)

    def _finish(self, name: str, status: int, note: str = "") -> None:
        """Keep the ended build's log, then remove its container (idempotent across processes)."""
        try:
            container = self.client.containers.get(name)
            text = self._tail(container.logs(stdout=True, stderr=True, stream=True, follow=False))
        except docker.errors.APIError as exc:
            if gone(exc):
                return  # another process kept and removed it
            raise
        self.logs.keep(name, container.labels.get(f"{LABEL}.image", ""), text + note, status)
        self._remove(name)

    def _tail(self, chunks) -> str:
        """The log read as it streams, as a person reads it, keeping only its last bytes (what
        the kept log holds): a build that printed gigabytes is never in memory."""
        kept: collections.deque[str] = collections.deque()
        size = 0
        buffer = b""
        for chunk in chunks:
            *lines, buffer = (buffer + chunk).split(b"\n")
            buffer = buffer[-MAX_LINE:]
            for line in lines:
                message = parse_line(line[:MAX_LINE]).message
                kept.append(message)
                size += len(message)
                while size > self.logs.max_bytes and len(kept) > 1:
                    size -= len(kept.popleft())
        if buffer:
            kept.append(parse_line(buffer).message)
        return "".join(kept)

    def _remove(self, name: str) -> None:
        try:
            self.client.api.remove_container(name, force=True)
        except docker.errors.APIError as exc:
            if not gone(exc):
                raise

    # -- listing ----------------------------------------------------------------------------------
    async def running(self) -> list[RunningBuild]:
        return await asyncio.to_thread(self._running)

    def _running(self) -> list[RunningBuild]:
        found = self.client.containers.list(
            all=True, filters={"label": [f"{LABEL}.stack={self.stack_id}"]})
        alive = []
        for container in found:
            labels = container.labels
            if container.status in ALIVE:
                alive.append(RunningBuild(container.name, labels.get(f"{LABEL}.image", ""),
                                          labels.get(f"{LABEL}.repo", "")))
            else:  # ended with nobody waiting (its bindery died): keep its log, remove it
                first_seen = self._ended.setdefault(container.name, time.monotonic())
                if time.monotonic() - first_seen < REAP_AFTER:
                    continue  # whoever follows it may still be reading its last lines
                self._ended.pop(container.name, None)
                try:
                    self._finish(container.name, _exit_status(container))
                except docker.errors.APIError:
                    pass  # the engine is busy with it: the next listing tries again
        listed = {c.name for c in found}
        self._ended = {n: t for n, t in self._ended.items() if n in listed}
        return alive

    async def aclose(self) -> None:
        await self.finishing()
        await asyncio.to_thread(self.client.close)
