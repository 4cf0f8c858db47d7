"""The build's success line (bindery/builds/repo2docker_run.py: end_line) is recognised only as a
top-level JSON line of its own, never inside repo2docker's log lines (where a repository's build
output is), and it is spelled the same in the build image's entry. The executor's background
finish of such a build is bounded at shutdown."""

from __future__ import annotations

import asyncio
import json

from bindery.builds import repo2docker_run as repo2docker, repo2docker_entry
from bindery.builds.executors.base import BuildExecutor, BuildHandle
from bindery.builds.repo2docker_run import END_KEY, end_line, parse_line


def test_the_entry_and_bindery_agree_on_the_line():
    assert repo2docker_entry.END_KEY == repo2docker.END_KEY
    assert repo2docker_entry.END_TOKEN_ENV == repo2docker.END_TOKEN_ENV


def test_own_line_gives_its_token():
    assert end_line(json.dumps({END_KEY: "abc123"}).encode() + b"\n") == "abc123"


def test_build_output_carrying_the_line_is_not_the_end():
    inner = json.dumps({END_KEY: "abc123"})
    wrapped = json.dumps({"phase": "building", "message": inner + "\n"}).encode()
    assert end_line(wrapped) is None
    assert parse_line(wrapped).message == inner + "\n"  # still shown as build output


def test_other_lines_are_not_the_end():
    for raw in (b"", b"plain text\n", f"{END_KEY} abc\n".encode(), b"[1, 2]\n",
                json.dumps({END_KEY: 42}).encode(), b'{"phase": "pushing", "message": "x"}'):
        assert end_line(raw) is None


class WaitsForever(BuildExecutor):
    """An executor whose builds never end: only what finish_in_background and finishing do with
    `wait` is under test here (the engine's own wait is in tests/builds/)."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    async def wait(self, handle: BuildHandle) -> int:
        try:
            await asyncio.Event().wait()
        finally:
            self.cancelled.append(handle.name)
        return 0

    async def start(self, spec): raise NotImplementedError  # noqa: E704
    def follow(self, name): raise NotImplementedError  # noqa: E704
    async def cancel(self, name, reason="cancelled"): raise NotImplementedError  # noqa: E704
    async def log_so_far(self, name): raise NotImplementedError  # noqa: E704
    async def running(self): raise NotImplementedError  # noqa: E704


async def test_finishing_in_the_background_is_bounded_at_shutdown():
    executor = WaitsForever()
    executor.finish_in_background(BuildHandle("bindery-build-x", 0.0, attached=False))
    await executor.finishing(timeout=0.1)  # an engine that stopped answering: not held forever
    assert executor.cancelled == ["bindery-build-x"]
    await executor.finishing(timeout=0.1)  # nothing left: returns at once
