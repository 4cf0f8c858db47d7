"""The one subprocess runner: always bounded, the child killed at the bound, the failure naming the command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import pytest

from bindery import process_runner
from bindery.process_runner import CommandTimeout


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_timeout_is_required():
    with pytest.raises(TypeError):
        process_runner.run(["true"])  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        asyncio.run(process_runner.run_async(["true"]))  # type: ignore[call-arg]


def test_output_exit_code_and_input():
    res = process_runner.run(["sh", "-c", "cat; echo err >&2; exit 3"], input="hello", timeout=10)
    assert (res.returncode, res.stdout, res.stderr) == (3, "hello", "err\n")


def test_stdin_is_closed_so_nothing_waits_for_a_person():
    res = process_runner.run(["cat"], timeout=10)
    assert res.returncode == 0 and res.stdout == ""


def test_the_bound_kills_the_command_and_says_which():
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout) as caught:
        process_runner.run(["sleep", "30"], timeout=0.5)
    assert time.monotonic() - t0 < 10
    assert "`sleep 30` did not finish within 0.5 s" == str(caught.value)
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, subprocess.TimeoutExpired)


def test_a_missing_program_is_file_not_found():
    with pytest.raises(FileNotFoundError):
        process_runner.run(["bindery-no-such-program"], timeout=5)


async def test_async_bound_kills_the_child():
    with pytest.raises(CommandTimeout):
        await process_runner.run_async(["sh", "-c", "echo $$ >&2; exec sleep 30"], timeout=0.5)
    res = await process_runner.run_async(["sh", "-c", "cat; exit 2"], input=b"x", timeout=10)
    assert (res.returncode, res.stdout) == (2, b"x")


async def test_async_cancel_kills_the_child(tmp_path):
    pidfile = tmp_path / "pid"
    task = asyncio.ensure_future(process_runner.run_async(
        ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"], timeout=60))
    for _ in range(200):  # bounded: the shell writes its pid at once
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.02)
    pid = int(pidfile.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gone(pid)


def test_feeding_pipes_one_command_into_another_and_bounds_the_producer():
    with process_runner.feeding(["printf", "a\\nb\\n"], timeout=10) as out:
        res = process_runner.run(["wc", "-l"], stdin=out, timeout=10)
    assert res.stdout.strip() == "2"
    with pytest.raises(CommandTimeout):
        with process_runner.feeding(["sleep", "30"], timeout=0.3):
            pass
    with pytest.raises(subprocess.CalledProcessError):
        with process_runner.feeding(["false"], timeout=10):
            pass
