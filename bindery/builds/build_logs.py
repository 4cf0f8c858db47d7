"""Kept build logs: each image build's log, readable after its build (and its container) is gone.

One text file per build name (``<name>.txt``, the log as a person reads it: the messages of the
build's JSON lines) and a small record beside it (``<name>.json``: exit status, image, when it
ended); a private repository's build is marked (``<name>.private``, before it starts), so its log
is served only with its key (bindery/builds/log_access.py). Files are written whole and renamed into place, so every bindery process on the machine
can keep and read them at once; the directory is bounded in bytes per build (the tail is kept),
in age and in count.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from bindery.backoff import WaitTimeout, wait_until_async
from bindery.builds.executors.base import CANCELLED, NAME_PREFIX

NAME = re.compile(re.escape(NAME_PREFIX) + r"[0-9a-f]{20}")
CUT = "[bindery] the start of this log was cut: only its last {0} bytes are kept\n"


@dataclass(frozen=True)
class BuildRecord:
    name: str
    image: str
    status: int
    ended: float


class BuildLogs:
    def __init__(self, folder: Path, max_bytes: int, keep_days: float, keep_count: int,
                 total_bytes: int = 0) -> None:
        self.folder = folder
        self.max_bytes = max(1024, max_bytes)
        self.keep_seconds = keep_days * 86400
        self.keep_count = max(1, keep_count)
        self.total_bytes = total_bytes  # all kept logs together (0: no bound beyond the count)

    @staticmethod
    def valid(name: str) -> bool:
        return NAME.fullmatch(name) is not None

    def keep(self, name: str, image: str, text: str, status: int) -> None:
        """Store one finished build's log (its last max_bytes) and its exit status."""
        if not self.valid(name):
            raise ValueError(f"not a build name: {name!r}")
        self.folder.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8", errors="replace")
        if len(data) > self.max_bytes:
            data = CUT.format(self.max_bytes).encode() + data[-self.max_bytes:]
        record = {"name": name, "image": image, "status": status, "ended": time.time()}
        self._write(self.folder / f"{name}.txt", data)
        self._write(self.folder / f"{name}.json", json.dumps(record).encode())
        self.prune()

    def text(self, name: str) -> str | None:
        if not self.valid(name):
            return None
        try:
            return (self.folder / f"{name}.txt").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None

    def mark_private(self, name: str) -> None:
        """This build's log is served only with its key (a private repository's)."""
        if not self.valid(name):
            raise ValueError(f"not a build name: {name!r}")
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{name}.private").touch()

    def is_private(self, name: str) -> bool:
        return self.valid(name) and (self.folder / f"{name}.private").exists()

    def record(self, name: str) -> BuildRecord | None:
        if not self.valid(name):
            return None
        try:
            data = json.loads((self.folder / f"{name}.json").read_text())
            return BuildRecord(name, str(data["image"]), int(data["status"]), float(data["ended"]))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def prune(self) -> int:
        """Remove logs older than keep_days, then the oldest beyond keep_count or beyond
        total_bytes together (the newest always stays); return how many."""
        try:
            logs = sorted(self.folder.glob(f"{NAME_PREFIX}*.txt"), key=_mtime, reverse=True)
        except FileNotFoundError:
            return 0
        cutoff = time.time() - self.keep_seconds
        removed = kept = 0
        for index, path in enumerate(logs):
            kept += _size(path)
            over = bool(self.total_bytes) and index > 0 and kept > self.total_bytes
            if index >= self.keep_count or _mtime(path) < cutoff or over:
                for stale in (path, path.with_suffix(".json"), path.with_suffix(".private")):
                    stale.unlink(missing_ok=True)
                removed += 1
        for marker in self.folder.glob(f"{NAME_PREFIX}*.private"):  # of builds that never ended
            if _mtime(marker) < cutoff:
                marker.unlink(missing_ok=True)
        return removed

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


async def kept_status(logs: BuildLogs, name: str, within: float = 10.0) -> int:
    """The status of a build another process saw end and removed, from its kept record; waits
    (bounded) while that process may still be writing it. CANCELLED when there is none."""
    try:
        record = await wait_until_async(lambda: logs.record(name), timeout=within, interval=0.2,
                                        what=f"the kept record of build {name}")
    except WaitTimeout:
        return CANCELLED
    return record.status
