"""Start a server for an image through JupyterHub and follow it to its real end.

The founding lesson: the hub may answer the start request with 202 (spawn still pending after its
slow_spawn_timeout) instead of 201. bindery never treats either answer as "ready": it follows the
spawn's progress stream from the first moment (not after the start request answers), then checks
that the server answers through the proxy with the minted token, and only then says `ready`.
A launch that fails or is abandoned removes its server and its temporary user.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from bindery import http_clients
from bindery.backoff import Backoff, WaitTimeout, wait_until_async
from bindery.events import Event, LaunchError
from bindery.launches.hub_api import Hub, HubError, HubUnavailable
from bindery.launches.hub_users import user_name

log = logging.getLogger(__name__)

# Seconds between asks while the hub has not registered the spawn yet: from PROGRESS_RETRY, doubling
# up to PROGRESS_RETRY_MAX. The stream replays the spawn from its start, so a later ask misses
# nothing, and a crowd's asks do not pile onto a busy hub (its single process runs every spawn).
PROGRESS_RETRY = 0.05
PROGRESS_RETRY_MAX = 0.8


def person_token_scopes(user: str) -> list[str]:
    """Scopes of the token in the `ready` event: access to that one server only (the user's
    default server, or `person/server`: a signed-in person's named server)."""
    return [f"access:servers!server={user}" if "/" in user else f"access:servers!server={user}/"]


def hub_user_of(name: str) -> str:
    """The hub user owning server `name` (`person/server` or an anonymous launch's user)."""
    return name.rpartition("/")[0] or name


def is_named(name: str) -> bool:
    """A signed-in person's named server: the person outlives it, only the server is removed."""
    return "/" in name


HUB_BACKOFF = Backoff(first=0.5, factor=2.0, cap=5.0)


def hub_backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based) on a transient hub error.

    Bounded: a hub that stays down ends a launch after `launch_retries` attempts, i.e. within
    launch_retries × hub_timeout + Σ hub_backoff (see the launch_retries setting).
    """
    return HUB_BACKOFF.delay(attempt)


@dataclass
class LaunchConfig:
    hub_url: str  # public proxy URL
    timeout: float
    retries: int
    token_lifetime: int
    verify_timeout: float = 30.0
    start_slots: int = 0  # servers starting at once (0: no limit); see settings.launches.launch_start_slots


class StartSlot:
    """One launch's place among the servers starting at once (none to take without a limit).

    A crowd's starts share the CPU: all at once, every person waits about as long as the last;
    a few at a time, in order of arrival, the first are ready in seconds and the median halves,
    while the machine stays as busy.
    """

    def __init__(self, slots: asyncio.Semaphore | None) -> None:
        self.slots = slots
        self.held = False

    def must_wait(self) -> bool:
        return self.slots is not None and self.slots.locked()

    async def take(self) -> None:
        if self.slots is not None:
            await self.slots.acquire()
            self.held = True

    def free(self) -> None:
        if self.held and self.slots is not None:
            self.held = False
            self.slots.release()


@dataclass
class Launched:
    user: str
    url: str
    token: str
    hub_status: int


async def _nothing() -> None:
    return None


class Launcher:
    def __init__(self, hub: Hub, config: LaunchConfig, on_cleanup=None, on_attempt=None) -> None:
        self.hub = hub
        self.config = config
        self.on_cleanup = on_cleanup or (lambda outcome: None)
        # on_attempt(status, retries, seconds) after each attempt of a person's launch, with
        # BinderHub's meanings: "success" with the failed attempts before it, "retry" (-1) for a
        # failed attempt that is tried again, "failure" (-1) for the last one.
        self.on_attempt = on_attempt or (lambda status, retries, seconds: None)
        self.http = http_clients.async_client(timeout=5.0)
        self.start_slots = asyncio.Semaphore(config.start_slots) if config.start_slots > 0 else None

    async def launch(self, image: str, repo_url: str, user: str | None = None,
                     for_person: bool = True, options: dict[str, str] | None = None
                     ) -> AsyncIterator[Event]:
        """Yield `launching` events; the last event is `ready` (or a LaunchError is raised).

        `user`: the hub user to create (the name the launch's quota reservation holds); every
        attempt uses it (a failed attempt removes the user before the next one).
        `for_person=False` (a warm pool's server): no token is minted and `ready` carries none;
        the spawn is still followed to its real end. Whoever claims it later mints the person's
        token (:meth:`person_token`) and checks it answers (:meth:`answers`).
        `options`: more of the start request's options beside the image (BinderHub's `repo_url`
        and `binder_*`, which the hub's spawner passes to the server as BINDER_* variables).
        """
        user = user or user_name(repo_url, secrets.token_hex(4))
        slot = StartSlot(self.start_slots)
        if slot.must_wait():
            yield Event(phase="launching", message=f"Waiting for a free start slot "
                        f"({self.config.start_slots} servers are starting right now)...\n")
        try:
            await slot.take()
            start = {**(options or {}), "image": image}
            async for event in self._attempts(start, user, for_person):
                if event.phase == "ready":
                    slot.free()  # started: the next one may start while the person's page loads
                yield event
        finally:
            slot.free()

    async def _attempts(self, start: dict[str, str], user: str, for_person: bool
                        ) -> AsyncIterator[Event]:
        attempt = 0
        observe = self.on_attempt if for_person else (lambda status, retries, seconds: None)
        while True:
            attempt += 1
            began = time.monotonic()
            try:
                async for event in self._attempt(start, user, for_person):
                    if event.phase == "ready":
                        observe("success", attempt - 1, time.monotonic() - began)
                    yield event
                return
            except LaunchError:
                observe("failure", -1, time.monotonic() - began)
                raise
            except HubError as exc:
                final = not isinstance(exc, HubUnavailable) or attempt >= self.config.retries
                observe("failure" if final else "retry", -1, time.monotonic() - began)
                if not isinstance(exc, HubUnavailable):
                    raise LaunchError(f"Could not launch: {exc}") from exc
                if attempt >= self.config.retries:
                    raise LaunchError(f"Could not launch: {exc} (after {attempt} attempts).", 503)
                delay = hub_backoff(attempt)
                log.warning("hub not answering (%s); retrying in %.1f s (attempt %d of %d)", exc,
                            delay, attempt + 1, self.config.retries)
                yield Event(phase="launching", message=f"JupyterHub is not answering ({exc}); "
                            f"retrying in {delay:.1f} s (attempt {attempt + 1} of "
                            f"{self.config.retries})\n")
                await asyncio.sleep(delay)

    async def _attempt(self, start: dict[str, str], name: str, for_person: bool = True
                       ) -> AsyncIterator[Event]:
        created = delivered = False
        try:
            async with asyncio.timeout(self.config.timeout):
                if not is_named(name):  # a signed-in person exists on the hub already
                    await self.hub.create_user(name)
                created = True
                yield Event(phase="launching", message="Launching server...\n")
                async for event in self._spawn(name, start, for_person):
                    # Once `ready` is out, the server is the person's: a consumer that stops
                    # reading after it (GeneratorExit, cancellation) must not remove it.
                    delivered = event.phase == "ready"
                    yield event
        except TimeoutError:
            await self._cleanup(name, created, "timeout")
            raise LaunchError(f"The server did not start within {self.config.timeout:.0f} s.", 504)
        except BaseException:
            if not delivered:
                await self._cleanup(name, created, "failed")
            raise

    async def _spawn(self, name: str, start: dict[str, str], for_person: bool = True
                     ) -> AsyncIterator[Event]:
        token_task = asyncio.ensure_future(
            self.person_token(name) if for_person else _nothing())
        start_task = asyncio.ensure_future(
            self.hub.start_server(name, start, timeout=self.config.timeout))
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        start_task.add_done_callback(lambda t: queue.put_nowait(("start", t)))
        pump = asyncio.ensure_future(self._pump_progress(name, start_task, queue))
        hub_status: int | None = None
        ready: dict[str, Any] | None = None
        try:
            while ready is None or hub_status is None:
                kind, item = await queue.get()
                if kind == "start":
                    hub_status = self._start_status(item)
                    if hub_status:
                        note = "server ready" if hub_status == 201 else \
                            "spawn still pending; following it to its end"
                        yield Event(phase="launching", hub_status=hub_status,
                                    message=f"JupyterHub answered {hub_status} ({note})\n")
                    else:
                        hub_status = 0  # POST failed: the progress stream carries the reason
                elif kind == "progress":
                    if item.get("failed"):
                        raise LaunchError(f"The server failed to start: {item.get('message', '')}")
                    if item.get("ready"):
                        ready = item
                        if hub_status is None and not start_task.done():
                            # Ready per the stream; the start request answers right after.
                            continue
                    else:
                        yield Event(phase="launching", message=f"{item.get('message', '')}\n",
                                    progress=item.get("progress"))
                elif kind == "error":
                    raise item
            token = await token_task
            url = self.config.hub_url.rstrip("/") + ready.get("url", f"/user/{name}/")
            if token is not None:
                await self.answers(url, token)
            yield Event(phase="ready", message=f"server running at {url}\n", url=url, token=token,
                        hub_status=hub_status, user=name)
        finally:
            for task in (pump, token_task, start_task):
                if not task.done():
                    task.cancel()
            await asyncio.gather(pump, token_task, start_task, return_exceptions=True)

    async def person_token(self, name: str) -> str:
        """The person's token opens their own server and nothing else (no API beyond it: not even
        starting, stopping or reading that server, nor minting more tokens), and it expires."""
        return await self.hub.mint_token(hub_user_of(name), self.config.token_lifetime,
                                         "bindery launch", person_token_scopes(name))

    async def answers(self, url: str, token: str) -> None:
        """Raise LaunchError unless the server answers through the proxy with this token, on an
        endpoint that needs it (Jupyter Server answers `/api` to anyone)."""
        await self._verify(url, token, "api/status")

    @staticmethod
    def _start_status(task: asyncio.Task) -> int:
        if task.cancelled() or task.exception() is not None:
            exc = None if task.cancelled() else task.exception()
            if isinstance(exc, HubUnavailable) and exc.status_code is None:
                raise exc
            return 0
        return int(task.result())

    async def _pump_progress(self, name: str, start_task: asyncio.Task,
                             queue: asyncio.Queue) -> None:
        """Forward the hub's progress events; ask again until the hub has registered the spawn."""
        retry = PROGRESS_RETRY
        try:
            while True:
                try:
                    async for event in self.hub.progress(name):
                        await queue.put(("progress", event))
                        if event.get("ready") or event.get("failed"):
                            return
                except HubError as exc:
                    # 400/404: the hub has not registered the spawn yet (the start request is
                    # still on its way); ask again until the start request answers.
                    if exc.status_code not in (400, 404) or isinstance(exc, HubUnavailable):
                        raise
                    if start_task.done():
                        # Not pending and no failure recorded: read the answer of the start
                        # request (a 400 here, e.g., means the server already runs).
                        exc2 = start_task.exception()
                        if exc2 is not None:
                            raise LaunchError(f"The server failed to start: {exc2}") from exc2
                        await queue.put(("progress", {"ready": True}))
                        return
                    await asyncio.wait({start_task}, timeout=retry)
                    retry = min(retry * 2, PROGRESS_RETRY_MAX)
        except Exception as exc:  # hand it to the consumer, which raises it in the launch
            await queue.put(("error", exc))

    async def _verify(self, url: str, token: str, path: str) -> None:
        """The server answers through the proxy with this token (never redirect before this)."""
        last = ""

        async def answers() -> bool:
            nonlocal last
            try:
                response = await self.http.get(f"{url}{path}", headers={"Authorization": f"token {token}"})
            except httpx.HTTPError as exc:
                last = type(exc).__name__
                return False
            last = f"HTTP {response.status_code}"
            return response.status_code == 200

        try:  # waiting for the proxy route to appear
            await wait_until_async(answers, timeout=self.config.verify_timeout, what="the server answering",
                                   interval=0.05, cap=1.0)
        except WaitTimeout:
            raise LaunchError(f"The server started but does not answer through the proxy ({last}).") from None

    async def _cleanup(self, name: str, created: bool, outcome: str) -> None:
        if not created:
            return
        await asyncio.shield(self.remove(name, outcome))

    async def remove(self, name: str, outcome: str) -> None:
        """Stop the server and delete the user, within a bound; never raise."""
        async def removed() -> bool:
            await self.hub.stop_server(name)  # a named server is removed once stopped
            if is_named(name):
                return True
            return await self.hub.delete_user(name)  # the hub refuses deletion while the server stops

        try:
            await wait_until_async(removed, timeout=60, what=f"hub user {name} removed", interval=0.1, cap=2.0,
                                   errors=(HubError,))
        except WaitTimeout:
            self.on_cleanup("cleanup_failed")
            log.error("could not remove hub user %s within 60 s; the culler will", name)
            return
        self.on_cleanup(outcome)
        log.info("removed hub user %s and its server (%s)", name, outcome)

    async def aclose(self) -> None:
        await self.http.aclose()
