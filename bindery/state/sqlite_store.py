"""The embedded state store: SQLite in WAL mode, one file in the data folder, no server.

Several processes on one machine share the file: SQLite's locks make each ``update`` and
``append`` one ``BEGIN IMMEDIATE`` transaction (the write lock is taken before reading, so a
check-and-take cannot interleave with another process's). Calls run in one worker thread per
store, off the event loop; a busy database is waited for at most the store's timeout.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from bindery.state.base import OWNER, Change, R, Record, StateStore, StoreDamaged

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                                    expires REAL NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS events (sid TEXT NOT NULL, idx INTEGER NOT NULL, data TEXT NOT NULL,
                                   expires REAL NOT NULL, PRIMARY KEY (sid, idx));
CREATE INDEX IF NOT EXISTS records_expiry ON records (expires);
CREATE INDEX IF NOT EXISTS events_expiry ON events (expires);
"""
PURGE_EVERY = 60.0  # seconds between deletions of expired rows
# Seconds between two integrity checks of the whole file (PRAGMA quick_check reads every page: a few
# ms for the small file retention keeps, but not for every /health probe).
CHECK_EVERY = 30.0
# What SQLite says of a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB): reads that touch the
# damaged pages fail with it, others may still work, so one such answer marks the whole store.
DAMAGE = ("malformed", "not a database", "corrupt")


def damage_of(exc: BaseException) -> str | None:
    """SQLite's words when `exc` says the file is damaged, else None."""
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        if any(word in text.lower() for word in DAMAGE):
            return text
    return None


def damage_in(db: sqlite3.Connection) -> str | None:
    """What SQLite's quick_check finds wrong with the file (None: nothing)."""
    rows = db.execute("PRAGMA quick_check(3)").fetchall()
    problems = [" ".join(str(r[0]).split()) for r in rows if r and r[0] != "ok"]
    return "; ".join(problems)[:300] or None


def file_damage(path: Path, timeout: float = 5.0) -> str | None:
    """What is wrong with the SQLite file at `path`, read-only (None: sound, or no file yet)."""
    if not Path(path).exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
        try:
            return damage_in(db)
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        found = damage_of(exc)
        if found is None:
            raise
        return found


class SQLiteStore(StateStore):
    def __init__(self, path: Path, **bounds: Any) -> None:
        super().__init__(**bounds)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="bindery-state")
        self._db: sqlite3.Connection | None = None
        self._purged = 0.0
        self.damage: str | None = None  # what SQLite said of the file, once it said it is damaged
        self._checked = 0.0  # time.monotonic() of the last integrity check

    # -- in the worker thread --------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                 check_same_thread=False)
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.executescript(SCHEMA)
                    break
                except sqlite3.OperationalError as exc:
                    # Another process is creating the same database (switching a new file to
                    # WAL answers "locked" without waiting): retry, within the store's timeout.
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        db.close()
                        raise
                    time.sleep(0.02)
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable against a process's death
            self._db = db
        return self._db

    def _write(self, body) -> Any:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = body(db, time.time())
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def _purge(self, db: sqlite3.Connection, now: float) -> None:
        if now - self._purged > PURGE_EVERY:
            self._purged = now
            db.execute("DELETE FROM records WHERE expires < ?", (now,))
            db.execute("DELETE FROM events WHERE expires < ?", (now,))

    def _get(self, kind: str, key: str) -> Record | None:
        row = self._conn().execute(
            "SELECT value FROM records WHERE kind=? AND key=? AND expires>=?",
            (kind, key, time.time())).fetchone()
        return json.loads(row[0]) if row else None

    def _update(self, kind: str, key: str, change: Change, ttl: float) -> Any:
        def body(db: sqlite3.Connection, now: float) -> Any:
            self._purge(db, now)
            row = db.execute("SELECT value FROM records WHERE kind=? AND key=? AND expires>=?",
                             (kind, key, now)).fetchone()
            new, result = change(json.loads(row[0]) if row else None)
            if new is None:
                db.execute("DELETE FROM records WHERE kind=? AND key=?", (kind, key))
            else:
                db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
                           (kind, key, json.dumps(new), now + ttl))
            return result
        return self._write(body)

    def _append_sync(self, sid: str, data: str, ttl: float) -> int:
        def body(db: sqlite3.Connection, now: float) -> int:
            (last,) = db.execute("SELECT MAX(idx) FROM events WHERE sid=?", (sid,)).fetchone()
            index = 0 if last is None else last + 1
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (sid, index, data, now + ttl))
            return index
        return self._write(body)

    # -- the interface ---------------------------------------------------------------------------
    async def _run(self, fn, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            # The thread's own sqlite timeout bounds lock waits; this bounds everything else.
            return await asyncio.wait_for(loop.run_in_executor(self._thread, partial(fn, *args)),
                                          self.timeout * 2)
        except sqlite3.DatabaseError as exc:
            damage = damage_of(exc)
            if damage is None:
                raise
            self.damage = damage
            raise self._damaged() from exc

    def _damaged(self) -> StoreDamaged:
        return StoreDamaged(f"the state store {self.path} is damaged ({self.damage})")

    def _quick_check(self) -> str | None:
        return damage_in(self._conn())

    async def check(self) -> None:
        """Damaged (a read failed on it, or SQLite's quick_check finds damage: checked at most
        every CHECK_EVERY seconds, and every time while damaged, so a repaired file is seen)?"""
        now = time.monotonic()
        if self.damage is not None or now - self._checked >= CHECK_EVERY:
            self._checked = now
            found = await self._run(self._quick_check)
            self.damage = found  # None: (again) sound
            if found is not None:
                raise self._damaged()
        await self.get(OWNER, "health-probe")

    async def get(self, kind: str, key: str) -> Record | None:
        return await self._run(self._get, kind, key)

    async def put(self, kind: str, key: str, value: Record, ttl: float) -> None:
        await self.update(kind, key, lambda _old: (value, None), ttl)

    async def delete(self, kind: str, key: str) -> None:
        await self.update(kind, key, lambda _old: (None, None), 0)

    async def update(self, kind: str, key: str, change: Change[R], ttl: float) -> R:
        return await self._run(self._update, kind, key, change, ttl)

    async def keys(self, kind: str) -> list[str]:
        def read() -> list[str]:
            rows = self._conn().execute("SELECT key FROM records WHERE kind=? AND expires>=?",
                                        (kind, time.time())).fetchall()
            return [r[0] for r in rows]
        return await self._run(read)

    async def _append(self, sid: str, data: str, ttl: float) -> int:
        return await self._run(self._append_sync, sid, data, ttl)

    async def events(self, sid: str, after: int = -1) -> list[tuple[int, str]]:
        def read() -> list[tuple[int, str]]:
            return self._conn().execute(
                "SELECT idx, data FROM events WHERE sid=? AND idx>? ORDER BY idx",
                (sid, after)).fetchall()
        return await self._run(read)

    async def used_bytes(self) -> int:
        def read() -> int:
            db = self._conn()
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            free = db.execute("PRAGMA freelist_count").fetchone()[0]
            return (pages - free) * db.execute("PRAGMA page_size").fetchone()[0]
        return await self._run(read)

    async def _drop_events(self, sid: str) -> None:
        await self._run(self._write, lambda db, _now: db.execute("DELETE FROM events WHERE sid=?",
                                                                 (sid,)))

    async def aclose(self) -> None:
        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None
        await asyncio.get_running_loop().run_in_executor(self._thread, close)
        self._thread.shutdown(wait=False)
