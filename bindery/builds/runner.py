"""One build as the build queue runs it: pick the buildpacks (saying why), then run repo2docker
through the build executor, its log lines turned into events, its failure explained.

This is the one place that turns a BuildJob into the build's options (arguments, BINDERY_BUILD_*
environment, the pinned git config of the outbound check); the executor only runs them.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from bindery import datadir
from bindery.builds.buildpacks.options import BuildOptions
from bindery.builds.executors.engine import OUT_OF_MEMORY, EngineExecutor
from bindery.builds.executors.base import CANCELLED, TIMED_OUT, BuildExecutor, BuildSpec, build_name
from bindery.builds.build_logs import BuildLogs
from bindery.builds.log_access import KEY_PARAM, log_key
from bindery.builds.buildpack_mode import BuildpacksChooser
from bindery.builds.disk_watch import DiskWatch, own_store
from bindery.builds import step_sandbox
from bindery.builds.queue import BuildJob
from bindery.builds.repo2docker_run import (AUTH_ENV, END_TOKEN_ENV, STEP_OPTIONS_ENV, REPO2DOCKER_ERROR, TAIL_LINES, end_digest, end_line,
                                       known_cause, parse_line, repo2docker_argv)
from bindery.events import NO_SPACE, Event, LaunchError, StoreFull
from bindery.git_commands import safe_git_env
from bindery.registry_client import basic_header
from bindery.settings import Settings
from bindery.stack import base_image, builder_image

CONFIG_IN_IMAGE = "/opt/bindery-build/bindery/builds/repo2docker_config.py"  # builder/Containerfile


def build_options(settings: Settings, mode: str) -> BuildOptions:
    return BuildOptions(
        mode=mode,
        base_image=base_image.reference(settings),
        base_suite=base_image.SUITE,
        python_version=base_image.PYTHON_VERSION,
        python_suites=",".join(f"{v}={suite}" for v, suite in settings.builds.python_suites.items()),
        pypi_index_url=settings.builds.pypi_index_url,
        installer=settings.builds.python_installer,
        runtime_strict=settings.builds.runtime_strict,
        environment_yml=settings.builds.environment_yml,
        # the stack's own registry and those its engines pull through a mirror
        allowed_registries=",".join([settings.registry.host,
                                     *sorted(settings.registry.registry_mirrors)]),
    )


def build_logs(settings: Settings) -> BuildLogs:
    return BuildLogs(settings.build_logs_path, settings.builds.build_log_max_bytes,
                     settings.builds.build_log_keep_days, settings.builds.build_log_keep_count,
                     settings.builds.build_log_total_bytes)


def engine_executor(settings: Settings) -> EngineExecutor:
    return EngineExecutor(settings.build_socket, builder_image.image_name(settings),
                          settings.stack_id, build_logs(settings))


def build_executor(settings: Settings) -> BuildExecutor:
    """The executor the `build_executor` setting names: engine containers or Kubernetes pods."""
    if settings.builds.build_executor == "kubernetes":
        from bindery.builds.executors.kubernetes import KubernetesExecutor  # its client only when used

        return KubernetesExecutor.from_settings(settings, build_logs(settings))
    return engine_executor(settings)


def build_log_url(settings: Settings, image: str, private: bool = False) -> str:
    """Where a build's log is read; a private repository's carries its key (log_access.py)."""
    name = build_name(image)
    url = f"{settings.service.web_url.rstrip('/')}/build-logs/{name}"
    return f"{url}?{KEY_PARAM}={log_key(settings, name)}" if private else url


def build_spec(settings: Settings, job: BuildJob, mode: str,
               build_args: dict[str, str]) -> BuildSpec:
    argv = repo2docker_argv([], job.source, job.commit, job.image, settings.builds.build_memory_limit,
                            build_args, config=CONFIG_IN_IMAGE)
    # The build image trusts the host's CA certificates itself (it is FROM the base image).
    env = {**build_options(settings, mode).to_environ(), **safe_git_env(job.git_config),
           END_TOKEN_ENV: secrets.token_hex(16)}  # its success line carries it (follow_build)
    sandbox = step_sandbox.options(settings, build_name(job.image))
    if sandbox is not None:
        env[STEP_OPTIONS_ENV] = json.dumps(sandbox)
    credential = datadir.registry_credential(settings)
    if credential is not None and settings.builds.build_executor == "engine":
        # the pusher's credential, for repo2docker's push only (on Kubernetes: k8s_push_secret)
        env[AUTH_ENV] = json.dumps({"auths": {settings.registry.host: {
            "auth": basic_header(credential).removeprefix("Basic ")}}})
    mounts = (job.source,) if os.path.isabs(job.source) and os.path.isdir(job.source) else ()
    return BuildSpec(image=job.image, repo=job.repo, argv=argv, env=env,
                     memory_limit=settings.builds.build_memory_limit, timeout=settings.builds.build_timeout,
                     mounts=mounts)


async def run_build(settings: Settings, chooser: BuildpacksChooser, executor: BuildExecutor,
                    job: BuildJob, build_args: dict[str, str]) -> AsyncIterator[Event]:
    """Every event of one build; raises LaunchError when it fails."""
    choice = await chooser.choose()
    yield Event(phase="building", message=f"Buildpacks: {choice.mode} ({choice.reason})\n")
    spec = build_spec(settings, job, choice.mode, build_args)
    log_url = build_log_url(settings, job.image, job.private)
    async for event in follow_build(executor, spec, log_url, settings.builds.build_memory_limit,
                                    settings.registry.registry_mirrors,
                                    settings.builds.build_output_max_bytes,
                                    settings.builds.build_disk_max_bytes,
                                    own_store(datadir.StackPaths.of(settings).store("build"))):
        yield event


class _DiskStop:
    """Stops the build once it wrote more than ``budget`` bytes in all; ``grown`` says how much
    it had written then (set before the build is stopped, so its end is explained)."""

    def __init__(self, executor: BuildExecutor, name: str, store: Path, budget: int) -> None:
        self.grown: int | None = None

        async def builds_running() -> int:
            return len(await executor.running())

        async def stop_when_over() -> None:
            self.grown = await DiskWatch(store, budget, builds_running).over()
            await executor.cancel(name, "it wrote more than its disk budget")

        self.task = asyncio.get_running_loop().create_task(stop_when_over())

    @classmethod
    def watch(cls, executor: BuildExecutor, name: str, store: Path | None,
              budget: int) -> _DiskStop | None:
        return cls(executor, name, store, budget) if store is not None and budget else None

    async def close(self) -> None:
        if self.grown is not None:  # the build is being stopped: let that finish
            await asyncio.gather(self.task, return_exceptions=True)
        elif not self.task.done():
            self.task.cancel()


def pushed_event(digest: str) -> Event:
    """The build's last event: the digest of the image it pushed (``digest``), which is what is
    launched (bindery/launches/pipeline.py records it)."""
    return Event(phase="pushing", message=f"Pushed the image: {digest}\n", digest=digest)


async def follow_build(executor: BuildExecutor, spec: BuildSpec, log_url: str,
                       memory_limit: str, mirrors: Mapping[str, str] | None = None,
                       output_max_bytes: int = 0, disk_max_bytes: int = 0,
                       disk_store: Path | None = None) -> AsyncIterator[Event]:
    """Start (or join) the build named from spec.image and yield its log from the start.

    When this task is cancelled (a shutdown), the build keeps running on the engine: the next
    bindery process to ask for the image attaches to it.

    The build's success line (with the token of this spec) ends it at once: the image is pushed,
    and the engine noticing the container's end, the log kept and the container removed (0.5-2 s
    on podman) happen in the background (BuildExecutor.finish_in_background). A build this
    process joined carries another process's token: it is waited for as usual.

    With ``disk_store`` (the build store, a file system of its own), what the build writes in all
    is held to ``disk_max_bytes`` too (builds/disk_watch.py), not only each file.
    """
    token = spec.env.get(END_TOKEN_ENV)
    try:
        handle = await executor.start(spec)
    except Exception as exc:
        raise LaunchError(f"Build failed: {exc}") from None
    if handle.attached:
        yield Event(phase="building",
                    message="Following the build of this image already running on the build "
                            "engine\n")
    errors: list[str] = []
    tail: list[str] = []
    succeeded = False
    digest = None  # what the engine pushed, as the success line says (any process's build)
    printed = 0  # bytes of output so far: past output_max_bytes the build is stopped
    disk = f"{disk_max_bytes / 2**30:g} GiB" if disk_max_bytes else "its disk budget"
    disk_stop = _DiskStop.watch(executor, handle.name, disk_store, disk_max_bytes)
    lines = executor.follow(handle.name)
    try:
        while True:
            remaining = handle.deadline - time.time()
            try:
                raw = await asyncio.wait_for(anext(lines), max(0.0, remaining))
            except StopAsyncIteration:
                break
            except TimeoutError:
                break  # wait() below stops it at the deadline and says so
            ended = end_line(raw)
            if ended is not None:
                digest = end_digest(raw)
                succeeded = not handle.attached and token is not None and ended == token
                if succeeded:
                    break
                continue  # another process's build: its end is the container's
            printed += len(raw)
            if output_max_bytes and printed > output_max_bytes:
                await executor.cancel(handle.name, "too much output")
                raise LaunchError(
                    f"Build failed: the build printed more than {output_max_bytes // 2**20} MiB "
                    f"of output (its output budget), so it was stopped. Print less (e.g. quiet "
                    f"installs). Build log: {log_url}", build_log_url=log_url)
            event = parse_line(raw)
            tail = [*tail[-TAIL_LINES:], event.message]
            if event.model_extra and event.model_extra.get("error"):
                errors.append(event.message.strip())
            yield event
    finally:
        await lines.aclose()
        if disk_stop is not None:
            await disk_stop.close()
    if disk_stop is not None and disk_stop.grown is not None:
        raise LaunchError(
            f"Build failed: the build wrote more than its disk budget ({disk}) in all "
            f"({disk_stop.grown / 2**30:.2f} GiB), so it was stopped. Write less (or "
            f"clean up within the step that writes). Full build log: {log_url}",
            build_log_url=log_url)
    if succeeded:
        executor.finish_in_background(handle)
        if digest:
            yield pushed_event(digest)
        return
    try:
        status = await executor.wait(handle)
    except Exception as exc:
        if NO_SPACE in str(exc).lower():
            raise StoreFull("build", "Build failed: the build machine ran out of disk space; this "
                            "is not the repository's fault. Room is being made; please try again "
                            f"in a minute. Build log: {log_url}", build_log_url=log_url) from None
        raise LaunchError(f"Build failed: {exc}. Build log: {log_url}",
                          build_log_url=log_url) from None
    if status == 0:
        if digest:
            yield pushed_event(digest)
        return
    if status == TIMED_OUT:
        reason = f"The build took longer than {spec.timeout:.0f} s and was stopped."
    elif status == CANCELLED:
        reason = "Build failed: the build was cancelled."
    elif status == OUT_OF_MEMORY:
        reason = f"Build failed: the build ran out of memory (its limit is {memory_limit})."
    elif 128 < status <= 128 + 64:  # what `timeout` in the container says of a killed child
        reason = f"Build failed: the build process was killed (signal {status - 128})."
    elif any(NO_SPACE in line.lower() for line in tail):  # the build store is full
        raise StoreFull("build", "Build failed: the build machine ran out of disk space (no space "
                        "left on device); this is not the repository's fault. Room is being made; "
                        f"please try again in a minute. Full build log: {log_url}",
                        build_log_url=log_url)
    else:
        cause = (known_cause(tail, mirrors, disk=disk, memory=memory_limit)
                 or (errors[-1].removeprefix(REPO2DOCKER_ERROR) if errors else "")
                 or f"repo2docker exited with status {status}")
        reason = f"Build failed: {cause}"
    raise LaunchError(f"{reason} Full build log: {log_url}", build_log_url=log_url)
