"""The embedded hub's spawner: DockerSpawner that knows when its server answers, and does not queue a
crowd's engine calls behind one thread.

This file runs inside the hub process, not bindery's: bindery/stack/jupyterhub.py copies it next to the
generated config, which imports it (it needs only DockerSpawner, aiohttp, what DockerSpawner
brings (docker, requests) and the standard library).

Why (measured, docs/performance.md):

- After ``start()`` returns, JupyterHub waits for the server's HTTP with exponential backoff and
  random jitter (waits drawn from up to 0.2, 0.4, 0.8, 1.6, 3.2, then 5 s), so a server that answers
  after 2.5 s is noticed on average about a second later, and up to 5 s later under load.
  ``start()`` here returns only once the server answers at the very URL the hub then asks, so the
  hub's first ask succeeds. It learns the moment from the container's own log (the server prints
  "is running at" right after it listens; the log arrives in batches, so once the server has
  written anything it is asked every few tens of milliseconds), asks from ``ready_poll_seconds``
  on, backing off, in case an image never prints at all, and fails the spawn at once, with the
  last log lines, if the container exits before it answers (instead of the hub waiting out its
  http_timeout).
- DockerSpawner runs every engine call of every spawn on one thread (a class-wide
  ``ThreadPoolExecutor(1)``): a crowd's create/start/inspect calls wait in one queue. Here they get
  ``engine_threads`` threads (and the engine client as many pooled connections).

- A spawn whose engine died under it (connection refused) waits for the engine to answer again
  (the stack's supervisor brings it back in seconds) and starts once more, instead of failing.
- It gives every server BinderHub's BINDER_* variables from the start request's options.
- A start request whose options name a home (``bindery_home``, bindery/launches/homes.py) gets it,
  mounted at the image's home folder. An existing home gets the repository's files merged into it
  first, in a confined container of the image (bindery/home_merge.py). A new one is made empty
  (size-limited, bindery/stack/home_volumes.py) and the engine copies the image's home into it
  when the server's container mounts it: no merge container on the launch path (it cost +0.6 s a
  launch, measured by bench/homes.py); the home's manifest is written once the server answers,
  from the image's files, and a later merge of the same home waits for it. A new home's file is
  the spare one made after the last new home's server answered (mkfs off the launch path).

The hub's own checks all still happen: it asks the server itself, adds the proxy route, and bindery
follows the spawn to its end and checks the server through the proxy with the person's token.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import aiohttp
import docker.errors
import requests.exceptions
from dockerspawner import DockerSpawner
from traitlets import Float, Integer, Unicode

try:  # in the hub process: the copy beside this file (bindery/stack/jupyterhub.py puts it there)
    import bindery_home_volumes as home_volumes
except ImportError:
    from bindery.stack import home_volumes

RUNNING_MARKER = b"is running at"  # Jupyter Server / Notebook, once it listens
LOG_TAIL = 4096  # bytes of the container's log kept for the marker and for failure messages
# Asks without a sign from the log back off to this: a crowd's pending spawns must not keep the
# hub's single process busy asking (the log line wakes the spawner at once anyway).
READY_POLL_MAX = 4.0
ANSWER_AGAIN = 0.02  # seconds between asks once the log says the server runs
# Once the server has written anything, it listens within a fraction of a second, but a followed
# log reaches us in batches (podman reads it every 250 ms): ask soon, backing off with the time
# since its first output (a tenth of it), so a CPU-starved crowd is not asked in a tight loop.
STARTING_ASK_SHARE = 0.1
ASK_TIMEOUT = 5.0  # one HTTP ask of the server
ENGINE_BACK_SECONDS = 30.0  # a spawn waits this long for an engine that died under it
ENGINE_ASK_AGAIN = 0.25  # seconds between asks of that engine
JUPYTERHUB, OTHER = "jupyterhub", "other"  # who answered an ask


class ServerExited(RuntimeError):
    """The container stopped before its server answered."""


class ServerSilent(RuntimeError):
    """The server did not answer within http_timeout."""


class EngineLog:
    """Follows one container's log over the engine's Docker API; `running` is set when the server
    says it listens, `ended` when the log ends (the container stopped)."""

    def __init__(self, docker_url: str, container_id: str, api_version: str = "v1.41") -> None:
        if docker_url.startswith("unix://"):
            self.connector: aiohttp.BaseConnector | None = aiohttp.UnixConnector(
                path=docker_url.removeprefix("unix://"))
            self.base = "http://engine"
        else:
            self.connector = None
            self.base = docker_url.replace("tcp://", "http://", 1)
        self.path = (f"/{api_version}/containers/{quote(container_id)}/logs"
                     "?follow=1&stdout=1&stderr=1")
        self.active = asyncio.Event()  # the server has written something
        self.active_at = 0.0
        self.running = asyncio.Event()
        self.ended = asyncio.Event()
        self.tail = b""

    async def follow(self) -> None:
        try:
            async with aiohttp.ClientSession(connector=self.connector) as session:
                timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=None)
                async with session.get(self.base + self.path, timeout=timeout) as response:
                    if response.status != 200:
                        return
                    async for chunk in response.content.iter_any():
                        if not self.active.is_set():
                            self.active_at = time.monotonic()
                            self.active.set()
                        self.tail = (self.tail + chunk)[-LOG_TAIL:]
                        if RUNNING_MARKER in self.tail:
                            self.running.set()
        except (aiohttp.ClientError, OSError):
            return  # no log to follow: the periodic ask still finds the server
        finally:
            self.ended.set()

    def last_lines(self, n: int = 8) -> str:
        # Non-TTY logs are framed (8-byte headers); keep the printable text of the last lines.
        text = bytes(b for b in self.tail if b in (9, 10) or 32 <= b < 127).decode()
        return "\n".join(text.splitlines()[-n:])


# BinderHub's start options about the launch's request -> the server's variables with its names
# (BinderHub's spawner mixin; REPO_URL as its documented appendix sets it), so extensions that show a
# "copy Binder link" or rebuild links find them.
BINDER_VARIABLES = {
    "repo_url": ("BINDER_REPO_URL", "REPO_URL"),
    "binder_ref_url": ("BINDER_REF_URL",),
    "binder_launch_host": ("BINDER_LAUNCH_HOST",),
    "binder_persistent_request": ("BINDER_PERSISTENT_REQUEST",),
    "binder_request": ("BINDER_REQUEST",),
}
MAX_OPTION_LENGTH = 4096  # a URL; anything longer is not one of bindery's


def binder_environment(user_options: dict | None) -> dict[str, str]:
    """The BINDER_* variables of a start request's options (only bindery's service token may
    start servers, but a value is still checked to be a plain, bounded string)."""
    env: dict[str, str] = {}
    for option, names in BINDER_VARIABLES.items():
        value = (user_options or {}).get(option)
        if isinstance(value, str) and len(value) <= MAX_OPTION_LENGTH and "\0" not in value:
            env.update(dict.fromkeys(names, value))
    return env


class BinderySpawner(DockerSpawner):
    engine_threads = Integer(
        8, config=True, help="Threads for engine calls, shared by all spawns (DockerSpawner: 1).")
    ready_poll_seconds = Float(
        0.5, config=True,
        help="Seconds before the first ask of a starting server whose log has not said it runs "
        "yet; the asks back off (doubling) to READY_POLL_MAX.")

    home_folder = Unicode(
        "", config=True, help="Folder of the home volumes' files (empty: homes are refused).")
    home_size_mb = Integer(512, config=True, help="Size of a new home volume in MiB.")
    home_merge_timeout = Float(120.0, config=True, help="Seconds the merge of a home may take.")
    home_merge_source = Unicode("", config=True, help="bindery/home_merge.py's source.")

    _engine_pool: ThreadPoolExecutor | None = None  # class-wide, as DockerSpawner's own
    # Home volume -> the writing of its manifest after its first server started (class-wide: the
    # home's next server is another user's spawner, and must not merge before the manifest is in).
    _manifests: dict[str, asyncio.Future] = {}
    _background: set[asyncio.Future] = set()  # spare homes being made (kept from the collector)

    @property
    def executor(self) -> ThreadPoolExecutor:
        if BinderySpawner._engine_pool is None:
            BinderySpawner._engine_pool = ThreadPoolExecutor(
                self.engine_threads, thread_name_prefix="engine")
        return BinderySpawner._engine_pool

    def get_env(self):
        return {**super().get_env(), **binder_environment(self.user_options)}

    async def start(self):
        try:
            return await self.start_once()
        except requests.exceptions.ConnectionError as exc:
            # The engine died under the spawn: the stack's supervisor brings it back in seconds
            # (its containers live on), so the start is made once more when it answers again.
            self.log.warning("engine not answering while starting %s (%s); starting it again "
                             "once it answers", self.user.name, exc)
            await self.engine_back()
            return await self.start_once()

    async def start_once(self):
        self.volumes = {}
        volume = (self.user_options or {}).get("bindery_home")
        new_home = await self.prepare_home(volume) if volume else None
        ip, port = await super().start()
        # The URL the hub asks next (its Server.url + "api"); internal SSL is not used here.
        await self.until_answers(f"http://{ip}:{port}{self.server.base_url.rstrip('/')}/api")
        if new_home is not None:
            self.write_manifest(volume, new_home)
            self.make_spare_home()
        return ip, port

    async def engine_back(self) -> None:
        """Return once the engine answers again; after ENGINE_BACK_SECONDS, fail the spawn saying so."""
        deadline = time.monotonic() + ENGINE_BACK_SECONDS
        while time.monotonic() < deadline:
            try:
                await asyncio.get_running_loop().run_in_executor(self.executor, self.client.ping)
                return
            except (requests.exceptions.RequestException, docker.errors.DockerException):
                await asyncio.sleep(ENGINE_ASK_AGAIN)
        raise RuntimeError(f"the container engine that runs servers did not answer for "
                           f"{ENGINE_BACK_SECONDS:.0f} s; please try again later")

    async def prepare_home(self, volume: str) -> str | None:
        """Make (if new) or merge the home, and mount it at the image's home folder; the image
        whose files a new home gets (its manifest is written after the server answers)."""
        if not home_volumes.valid_name(volume) or not self.home_folder:
            raise home_volumes.HomeError(f"this hub does not mount the home {volume!r}")
        option = self.user_options.get("image")
        image = await self.check_allowed(option) if option else self.image
        await self.pull_image(image)
        # bindery says when the home already holds this very image's files merged (its last
        # server ran it): the merge could change nothing then, and is skipped.
        merged = self.user_options.get("bindery_home_merged") == option
        pending = BinderySpawner._manifests.get(volume)
        if pending is not None and not merged:  # its first server's manifest: a merge needs it
            with contextlib.suppress(asyncio.TimeoutError):  # without it the merge loses nothing
                await asyncio.wait_for(asyncio.shield(pending), self.home_merge_timeout)

        def prepare() -> tuple[str, str]:
            if home_volumes.ensure(self.client, volume, Path(self.home_folder),
                                   self.home_size_mb):
                return home_volumes.image_home(self.client, image), "new (filled from the image)"
            if merged:
                return home_volumes.image_home(self.client, image), "already merged (same image)"
            return home_volumes.merge(self.client, volume, image, self.home_merge_source,
                                      self.home_merge_timeout), "merged"

        began = time.monotonic()
        home, how = await asyncio.get_running_loop().run_in_executor(self.executor, prepare)
        self.log.info("home %s %s for %s in %.2f s, mounted at %s", volume, how, self.user.name,
                      time.monotonic() - began, home)
        self.volumes = {volume: {"bind": home, "mode": "rw"}}
        return image if how.startswith("new") else None

    def write_manifest(self, volume: str, image: str) -> None:
        """Write a new home's manifest in the background (its server answers already). If it
        fails, the home has none: a later merge then keeps every file of the home that differs
        from the repository's as the person's (renamed beside the repository's), losing nothing."""
        def run() -> None:
            home_volumes.manifest(self.client, volume, image, self.home_merge_source,
                                  self.home_merge_timeout)

        async def write() -> None:
            began = time.monotonic()
            try:
                await asyncio.get_running_loop().run_in_executor(self.executor, run)
                self.log.info("home %s manifest written in %.2f s", volume,
                              time.monotonic() - began)
            except Exception as exc:  # logged, never the launch's failure: the server runs
                self.log.warning("home %s: no manifest: %s", volume, exc)
            finally:
                BinderySpawner._manifests.pop(volume, None)

        BinderySpawner._manifests[volume] = asyncio.ensure_future(write())

    def make_spare_home(self) -> None:
        """Make the next new home's file in the background, now that this server answers: the
        next launch renames it into place instead of running mkfs before its server can start."""
        async def make() -> None:
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self.executor, home_volumes.make_spare, Path(self.home_folder), self.home_size_mb)
            except home_volumes.HomeError as exc:  # the next home is made as before, inline
                self.log.warning("no spare home file: %s", exc)

        task = asyncio.ensure_future(make())
        BinderySpawner._background.add(task)
        task.add_done_callback(BinderySpawner._background.discard)

    async def until_answers(self, url: str) -> None:
        """Return once the server answers at `url` (below 500, as the hub counts it); raise
        ServerExited if the container stops first, ServerSilent after http_timeout (the bound
        the hub's own wait had)."""
        log = EngineLog(str(self.client_kwargs.get("base_url", "")), self.container_id)
        follower = asyncio.ensure_future(log.follow())
        deadline = time.monotonic() + self.http_timeout
        poll = self.ready_poll_seconds
        try:
            async with aiohttp.ClientSession() as http:
                while time.monotonic() < deadline:
                    answer = await _answer(http, url)
                    # An address whose container is gone can still "answer": with no bridge left,
                    # the host routes it elsewhere (here a proxy says 403). A single-user server
                    # says who it is; anything else counts only while the container runs.
                    if answer == JUPYTERHUB or (answer == OTHER and await self.poll() is None):
                        return
                    if log.ended.is_set() and await self.poll() is not None:
                        raise ServerExited(
                            f"The server's container stopped before it answered. Its last "
                            f"output:\n{log.last_lines()}")
                    if log.running.is_set():
                        await asyncio.sleep(ANSWER_AGAIN)  # listening: the loop starts right away
                    elif log.active.is_set():  # starting: it listens soon
                        since = time.monotonic() - log.active_at
                        await _first_of([log.running, log.ended], min(
                            max(ANSWER_AGAIN, STARTING_ASK_SHARE * since), READY_POLL_MAX))
                    else:  # woken by the first output, the log's end, or the next periodic ask
                        await _first_of([log.active, log.running, log.ended], poll)
                        poll = min(poll * 2, READY_POLL_MAX)
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        raise ServerSilent(f"The server did not answer within {self.http_timeout:.0f} s of its "
                           f"start. Its last output:\n{log.last_lines()}")


async def _first_of(events: list[asyncio.Event], timeout: float) -> None:
    """Wait until one of the events not yet set is set, at most `timeout` seconds."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events if not e.is_set()]
    if not waiters:
        await asyncio.sleep(timeout)
        return
    await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()


async def _answer(http: aiohttp.ClientSession, url: str) -> str | None:
    """JUPYTERHUB (a single-user server answered), OTHER (something else answered below 500, as
    the hub would count it) or None (no answer yet)."""
    try:
        async with http.get(url, allow_redirects=False,
                            timeout=aiohttp.ClientTimeout(total=ASK_TIMEOUT)) as response:
            if response.status >= 500:
                return None
            return JUPYTERHUB if "X-JupyterHub-Version" in response.headers else OTHER
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return None
