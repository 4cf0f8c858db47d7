"""The one process supervisor: background processes of the stack (start once with a pid file and a log file,
wait until they answer, stop) and the deploy's version slots and front proxy (``spawn``, ``alive``,
``kill_group``, used by bindery/deploy/local_runtime.py).

A pid file holds ``{"pid": ..., "argv": [...]}``; a process counts as ours only while it is alive and
its command line still equals the recorded one (so a reused pid is never signalled).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from bindery.backoff import WaitTimeout, wait_until
from bindery.datadir import StackPaths


class StackError(RuntimeError):
    """A part of the stack could not be started or does not answer."""


def cmdline(pid: int) -> list[str] | None:
    """The live process `pid`'s command line, or None (gone, or a zombie: then reaped)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # state is the field after the parenthesised command name; Z = zombie (exited).
    if stat[stat.rfind(")") + 2 :][:1] in ("Z", "X"):
        _reap(pid)
        return None
    return raw.decode(errors="replace").split("\0")[:-1]


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def record(paths: StackPaths, name: str) -> dict:
    """The pid file's record of ``name`` (pid, argv, fingerprint and the ``meta`` it was started with)."""
    try:
        record = json.loads(paths.pid(name).read_text())
        return record if isinstance(record, dict) else {}
    except (FileNotFoundError, ValueError):
        return {}


def read_pid(paths: StackPaths, name: str) -> int | None:
    """pid of the running process ``name`` started by this stack, or None."""
    entry = record(paths, name)
    try:
        pid, argv = int(entry["pid"]), list(entry["argv"])
    except (ValueError, KeyError, TypeError):
        return None
    _reap(pid)
    cmd = cmdline(pid)
    if cmd is None or cmd != argv:
        return None
    return pid


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


def start(
    paths: StackPaths,
    name: str,
    argv: Sequence[str],
    *,
    ready: Callable[[], bool],
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    what: str | None = None,
    fingerprint: str = "",
    meta: Mapping[str, object] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Start ``argv`` in the background unless it already runs and is ``ready()``.

    Waits (bounded by ``timeout``) until ``ready()`` is true. Raises StackError naming the log file
    when the process exits early or does not answer in time. A running process whose recorded
    ``fingerprint`` (e.g. a hash of its config) differs is restarted. ``meta`` is kept in the pid
    file's record (e.g. the port a replica was given, so a restart keeps it).
    """
    what = what or name
    logfile = paths.log(name)
    pid = read_pid(paths, name)
    if pid is not None and record(paths, name).get("fingerprint", "") != fingerprint:
        log(f"  {what}: configuration changed, restarting")
        stop(paths, name)
        pid = None
    if pid is not None:
        if _safe(ready):
            return {"pid": pid, "started": False, "log": str(logfile)}
        # Running but not answering: it may be starting up (another `up`); give it the timeout.
        if _wait(ready, pid, timeout):
            return {"pid": pid, "started": False, "log": str(logfile)}
        raise StackError(
            f"{what} (pid {pid}) runs but does not answer after {timeout:.0f}s; "
            f"see {logfile}:\n{log_tail(logfile)}"
        )
    if _safe(ready):
        raise StackError(
            f"something not started by this stack already answers where {what} should run "
            f"(port or socket in use by another process?); pick other ports or data_dir"
        )
    paths.pids.mkdir(parents=True, exist_ok=True)
    proc = spawn(argv, logfile, env=env, cwd=cwd)
    paths.pid(name).write_text(json.dumps({**(meta or {}), "pid": proc.pid, "argv": list(argv),
                                                "fingerprint": fingerprint}))
    t0 = time.monotonic()
    if not _wait(ready, proc.pid, timeout, proc):
        code = proc.poll()
        if code is None:
            stop(paths, name)
            why = f"does not answer after {timeout:.0f}s (stopped it)"
        else:
            why = f"exited with code {code}"
        raise StackError(f"{what} {why}; see {logfile}:\n{log_tail(logfile)}")
    log(f"  {what} started (pid {proc.pid}) in {time.monotonic() - t0:.1f}s")
    return {"pid": proc.pid, "started": True, "log": str(logfile)}


def spawn(argv: Sequence[str], logfile: Path, *, env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    """Start ``argv`` in a session of its own (so :func:`kill_group` stops it and its children), its output
    appended to ``logfile`` after a line saying when and what started."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {list(argv)}\n".encode())
        out.flush()
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(cwd) if cwd else None,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )


def alive(pid: int) -> bool:
    """True while ``pid`` runs (an exited child of ours is reaped and counts as gone)."""
    _reap(pid)
    return cmdline(pid) is not None


def _safe(ready: Callable[[], bool]) -> bool:
    try:
        return bool(ready())
    except Exception:
        return False


def _wait(ready, pid: int, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    def outcome() -> str | None:
        if _safe(ready):
            return "ready"
        if (proc.poll() is not None) if proc is not None else (cmdline(pid) is None):
            return "exited"
        return None

    try:
        return wait_until(outcome, timeout=timeout, what=f"process {pid} ready", interval=0.05, cap=0.5) == "ready"
    except WaitTimeout:
        return _safe(ready)


def stop(paths: StackPaths, name: str, timeout: float = 15.0, detached_children: bool = False) -> bool:
    """Stop process ``name`` (its whole process group) if it runs. Returns True if it ran.
    ``detached_children``: also what it started in sessions of their own (see ``kill_group``)."""
    pid = read_pid(paths, name)
    paths.pid(name).unlink(missing_ok=True)
    if pid is None:
        return False
    kill_group(pid, timeout, detached_children)
    return True


def running() -> Iterator[tuple[int, list[str]]]:
    """Every live process of this machine with its command line: (pid, argv)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = cmdline(int(entry.name))
            if argv:
                yield int(entry.name), argv


def kill_group(pid: int, timeout: float = 15.0, detached_children: bool = False) -> None:
    """SIGTERM the process group of ``pid`` (a session leader we started), SIGKILL after timeout.
    ``detached_children``: also whatever it had started in sessions of their own (JupyterHub
    starts its proxy and its managed services, the idle culler among them, that way: they would
    outlive a hub that was killed or did not finish its own cleanup). Not for a process whose
    detached children must outlive it (the supervisor's restarted parts)."""
    strays = _descendants(pid) if detached_children else {}
    # Those first: JupyterHub stopping its idle culler itself waits out SIGINT, then SIGTERM
    # (14 s seen), while it goes on spawning; gone already, they cost its cleanup nothing.
    stop_strays(strays)
    _signal_group(pid, timeout)
    stop_strays(strays)


def _signal_group(pid: int, timeout: float) -> None:
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        try:
            wait_until(lambda: _gone(pid), timeout=wait, what=f"process group {pid} gone after {sig.name}")
            return
        except WaitTimeout:
            continue  # on to SIGKILL (after which kill_group gives up: nothing stronger to send)


def _live_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/<pid>/stat after the command name) of every live process:
    fields[0] is the state, [1] the parent pid, [2] the process group."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] not in ("Z", "X"):
            yield int(entry.name), fields


def _parents() -> dict[int, int]:
    """pid -> parent pid, for every live process."""
    return {pid: int(fields[1]) for pid, fields in _live_stats()}


def _descendants(pid: int) -> dict[int, list[str]]:
    """Every live process below ``pid`` (its children, theirs, ...) with its command line."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: dict[int, list[str]] = {}
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        argv = cmdline(child)
        if argv is not None and child not in found:
            found[child] = argv
            todo.extend(children.get(child, []))
    return found


def stop_strays(strays: Mapping[int, list[str]], wait: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, each of ``strays`` still alive as the same program (a reused pid
    is never signalled)."""
    def alive() -> list[int]:
        return [p for p, argv in strays.items() if cmdline(p) == argv]

    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = alive()
        if not left:
            return
        for p in left:
            try:
                os.kill(p, sig)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            wait_until(lambda: not alive(), timeout=wait, what="the stopped process's children gone")
            return
        except WaitTimeout:
            continue


def _gone(pid: int) -> bool:
    _reap(pid)
    return cmdline(pid) is None and not _group_alive(pid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg; look for a live member.
    return any(int(fields[2]) == pgid for _, fields in _live_stats())


def state(paths: StackPaths, name: str) -> dict:
    pid = read_pid(paths, name)
    return {"pid": pid, "running": pid is not None, "log": str(paths.log(name))}
