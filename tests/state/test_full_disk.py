"""A state store whose disk fills up: writes fail with a clear error, nothing written before is lost
or corrupted, and the store works again, by itself, once there is space (SQLite on a small tmpfs)."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from bindery.state import unavailable_errors
from bindery.state.sqlite_store import SQLiteStore


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True,
                   timeout=30)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, timeout=30)


def fill(folder: Path) -> Path:
    """A file that takes every free byte of the file system (written until ENOSPC)."""
    balloon = folder / "balloon"
    with balloon.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return balloon


async def test_a_full_disk_fails_writes_clearly_keeps_what_was_written_and_recovers(small_disk):
    store = SQLiteStore(small_disk / "state.sqlite", timeout=2.0)
    try:
        await store.create_session("s1", {"provider": "gh", "spec": "o/r/main"})
        await store.append("s1", '{"phase":"fetching"}')
        balloon = fill(small_disk)
        failures = 0
        for i in range(200):  # SQLite fills its free pages first: write until it cannot
            try:
                await store.put("bulk", f"k{i}", {"blob": "z" * 20_000}, ttl=600)
            except unavailable_errors() as exc:
                failures += 1
                assert isinstance(exc, (sqlite3.Error, OSError))
                assert "full" in str(exc).lower() or "space" in str(exc).lower(), exc
                break
        assert failures == 1, "the disk never filled up"
        # What was written before the disk filled is there, and the database is sound.
        assert (await store.session("s1"))["spec"] == "o/r/main"
        assert [data for _, data in await store.events("s1")] == ['{"phase":"fetching"}']
        balloon.unlink()  # space returns
        await store.append("s1", '{"phase":"ready"}')
        await store.put("bulk", "after", {"ok": True}, ttl=600)
        assert (await store.get("bulk", "after")) == {"ok": True}
        assert len(await store.events("s1")) == 2
    finally:
        await store.aclose()
    with sqlite3.connect(small_disk / "state.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
