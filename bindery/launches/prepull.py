"""Pull an image onto the run side before the hub starts it, so the person sees pull progress.

DockerSpawner pulls a missing image silently inside the hub's start request, and a first launch
of a large image then looks stuck for minutes. bindery pulls it first through the run engine's
Docker API (``settings.run_socket``) and turns the pull's progress into `launching` events:
throttled, with layers and bytes. One pull per image however many launches wait for it (late
joiners get the progress so far), and a bounded number of pulls at once (images share their base
layers, which concurrent pulls would each download again); each pull is bounded by a timeout; a failure is a clear
`failed` event. Everything is async (httpx over the engine's unix socket): nothing blocks the
service's event loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from bindery.backoff import Backoff
from bindery.channel import Channel
from bindery.engine_clients import http_client
from bindery.events import NO_SPACE, Event, LaunchError, StoreFull
from bindery.image_names import split_image

API = "/v1.41"
# What the engine says when the registry went away mid-pull (restarted read-only for its garbage
# collection, or by the supervisor): the next attempt finds it back.
INTERRUPTED = ("unexpected eof", "connection refused", "connection reset", "broken pipe")
PULL_RETRIES = Backoff(attempts=4, first=1.0, cap=4.0)
# Docker says "Pull complete"/"Already exists"; podman says "Download complete".
DONE = ("pull complete", "already exists", "download complete")


@dataclass
class PullProgress:
    """Per-layer state of one pull, summarised for people."""

    layers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def update(self, line: dict[str, Any]) -> None:
        layer = line.get("id")
        status = str(line.get("status", ""))
        if not layer or not status or status.lower().startswith(("pulling from", "digest", "status")):
            return
        state = self.layers.setdefault(layer, {"status": "", "current": 0, "total": 0})
        state["status"] = status
        detail = line.get("progressDetail") or {}
        if isinstance(detail.get("total"), int) and detail["total"] > 0:
            state["total"] = detail["total"]
        if isinstance(detail.get("current"), int) and status.lower().startswith("downloading"):
            state["current"] = detail["current"]
        if status.lower() in DONE:
            state["current"] = state["total"]

    def finish(self) -> None:
        for state in self.layers.values():
            state["status"], state["current"] = "Pull complete", state["total"]

    def summary(self) -> dict[str, int]:
        return {
            "layers": len(self.layers),
            "layers_done": sum(1 for s in self.layers.values() if s["status"].lower() in DONE),
            "bytes": sum(s["current"] for s in self.layers.values()),
            "total_bytes": sum(s["total"] for s in self.layers.values()),
        }

    def message(self) -> str:
        s = self.summary()
        text = f"Pulling the image onto the server's machine: {s['layers_done']} of {s['layers']} layers"
        if s["total_bytes"]:
            text += f", {s['bytes'] / 1e6:.1f} of {s['total_bytes'] / 1e6:.1f} MB"
        return text + "\n"


@dataclass(eq=False)
class Pull:
    image: str
    channel: Channel = field(default_factory=Channel)
    error: LaunchError | None = None


class Prepuller:
    def __init__(self, docker_host: str, timeout: float, interval: float = 1.0,
                 concurrency: int = 2) -> None:
        self.docker_host = docker_host
        self.timeout = timeout
        self.interval = interval
        # Images share layers (the same base): concurrent pulls would each download them again.
        self.slots = asyncio.Semaphore(max(1, concurrency))
        self.client = http_client(docker_host)
        self.active: dict[str, Pull] = {}
        self._tasks: set[asyncio.Task] = set()

    async def present(self, image: str) -> bool:
        try:
            response = await self.client.get(f"{API}/images/{quote(image, safe='/:@')}/json",
                                             timeout=10.0)
        except httpx.HTTPError as exc:
            raise LaunchError(f"The container engine that runs servers is not answering "
                              f"({type(exc).__name__}); please try again shortly.", 503) from exc
        return response.status_code == 200

    async def pull(self, image: str) -> AsyncIterator[Event]:
        """`launching` events of the pull of `image` (none when it is already there)."""
        pull = self.active.get(image)
        if pull is None:
            if await self.present(image):
                return
            pull = self.active.get(image)  # another launch may have started it meanwhile
        if pull is None:
            pull = Pull(image)
            self.active[image] = pull
            task = asyncio.get_running_loop().create_task(self._run(pull))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        async for _, event in pull.channel.follow():
            yield event
        if pull.error is not None:
            raise pull.error

    async def _run(self, pull: Pull) -> None:
        progress = PullProgress()
        started = time.monotonic()
        try:
            await pull.channel.publish(Event(
                phase="launching", message="Pulling the image onto the server's machine...\n"))
            async with asyncio.timeout(self.timeout):
                if self.slots.locked():
                    await pull.channel.publish(Event(
                        phase="launching", message="Waiting for other image pulls to finish...\n"))
                async with self.slots:
                    await self._pull_retrying(pull, progress)
            progress.finish()
            took = time.monotonic() - started
            await pull.channel.publish(Event(
                phase="launching", pull=progress.summary(),
                message=f"Pulled the image in {took:.1f} s\n"))
        except TimeoutError:
            pull.error = LaunchError(f"Pulling the image onto the server's machine took longer "
                                     f"than {self.timeout:.0f} s; please try again later.", 504)
        except LaunchError as exc:
            pull.error = exc
        except httpx.HTTPError as exc:
            pull.error = LaunchError(f"Could not pull the image onto the server's machine: the "
                                     f"container engine stopped answering ({type(exc).__name__}).",
                                     503)
        except Exception as exc:  # an adapter bug must still end the pull for its watchers
            pull.error = LaunchError(f"Could not pull the image: {type(exc).__name__}: {exc}")
        finally:
            self.active.pop(pull.image, None)
            await pull.channel.close()

    async def _pull_retrying(self, pull: Pull, progress: PullProgress) -> None:
        """The pull, tried again (bounded) when the registry's connection broke under it."""
        for attempt in range(1, PULL_RETRIES.attempts + 1):
            try:
                return await self._stream(pull, progress)
            except _Interrupted as exc:
                if attempt == PULL_RETRIES.attempts:
                    raise LaunchError(f"Could not pull the image onto the server's machine: the "
                                      f"registry kept breaking off ({exc}); please try again "
                                      "shortly.", 503) from None
                await pull.channel.publish(Event(
                    phase="launching", message="The image registry broke off the pull (it may be "
                    "restarting); trying again...\n"))
                await asyncio.sleep(PULL_RETRIES.delay(attempt))

    async def _stream(self, pull: Pull, progress: PullProgress) -> None:
        host, repo, tag = split_image(pull.image)
        name = f"{host}/{repo}"
        last = 0.0
        async with self.client.stream("POST", f"{API}/images/create",
                                      params={"fromImage": name, "tag": tag}) as response:
            if response.status_code != 200:
                body = (await response.aread()).decode(errors="replace")
                if NO_SPACE in body.lower():
                    raise StoreFull("run", "Could not pull the image: the servers' machine ran "
                                    "out of disk space for images (not your repository's fault). "
                                    "Room is being made; please try again in a minute.")
                text = _error_text(body) or f"HTTP {response.status_code}"
                if any(word in text.lower() for word in INTERRUPTED):
                    raise _Interrupted(text)
                raise LaunchError(f"Could not pull the image onto the server's machine: {text}")
            async for raw in response.aiter_lines():
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(line, dict):
                    continue
                if line.get("error") or line.get("errorDetail"):
                    detail = line.get("errorDetail") or {}
                    message = line.get("error") or detail.get("message") or "unknown error"
                    if NO_SPACE in message.lower():
                        raise StoreFull("run", "Could not pull the image: the servers' machine "
                                        "ran out of disk space for images (not your repository's "
                                        "fault). Room is being made; please try again in a "
                                        "minute.")
                    if any(word in message.lower() for word in INTERRUPTED):
                        raise _Interrupted(message)
                    raise LaunchError(f"Could not pull the image onto the server's machine: "
                                      f"{message}")
                progress.update(line)
                now = time.monotonic()
                if progress.layers and now - last >= self.interval:
                    last = now
                    await pull.channel.publish(Event(phase="launching", message=progress.message(),
                                                     pull=progress.summary()))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.aclose()


def _error_text(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:300]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or "")[:300]
    return ""


class _Interrupted(Exception):
    """The registry's connection broke under a pull (worth another attempt)."""
