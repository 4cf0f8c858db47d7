"""A damaged SQLite state store is seen: reads and writes fail as StoreDamaged naming the file,
check() (what /health runs) reads the whole file, so it finds damage that a probe's read does
not touch."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bindery.state.base import StoreDamaged
from bindery.state.sqlite_store import SQLiteStore, file_damage


async def filled_store(path: Path) -> None:
    """A store of several pages (records of one kind), closed (its WAL folded into the file)."""
    store = SQLiteStore(path)
    for i in range(300):
        await store.put("filler", f"k{i}", {"value": "x" * 200}, 3600)
    await store.aclose()


def damage(path: Path) -> None:
    """Overwrite pages 3-5 (of ~30) with garbage: page 1 (the header) stays readable."""
    with open(path, "r+b") as out:
        out.seek(4096 * 2)
        out.write(os.urandom(4096 * 3))


async def test_damage_is_found_and_named(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    await filled_store(path)
    good = tmp_path / "good.sqlite"
    shutil.copy(path, good)
    assert file_damage(path) is None
    damage(path)
    assert "btreeInitPage" in (file_damage(path) or "")
    store = SQLiteStore(path)
    with pytest.raises(StoreDamaged, match=f"state store {path} is damaged"):
        await store.check()
    with pytest.raises(StoreDamaged, match="malformed"):
        await store.create_session("s1", {"provider": "gh", "spec": "o/r/main"})
    await store.aclose()
    shutil.copy(good, path)  # the operator restores it (bindery stopped): sound again
    assert file_damage(path) is None
    store = SQLiteStore(path)
    await store.check()
    await store.aclose()


async def test_a_file_that_is_not_a_database(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"this is not SQLite\n" * 300)
    assert "not a database" in (file_damage(path) or "")
    store = SQLiteStore(path)
    with pytest.raises(StoreDamaged, match="not a database"):
        await store.get("owner", "x")
    await store.aclose()
