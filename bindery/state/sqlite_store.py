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

from bindery.state.base import Change, R, Record, StateStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                                    expires REAL NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS events (sid TEXT NOT NULL, idx INTEGER NOT NULL, data TEXT NOT NULL,
                                   expires REAL NOT NULL, PRIMARY KEY (sid, idx));
CREATE INDEX IF NOT EXISTS records_expiry ON records (expires);
CREATE INDEX IF NOT EXISTS events_expiry ON events (expires);
"""
PURGE_EVERY = 60.0  # seconds between deletions of expired rows


class SQLiteStore(StateStore):
    def __init__(self, path: Path, **bounds: Any) -> None:
        super().__init__(**bounds)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="bindery-state")
        self._db: sqlite3.Connection | None = None
        self._purged = 0.0

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
        # The thread's own sqlite timeout bounds lock waits; this bounds everything else.
        return await asyncio.wait_for(loop.run_in_executor(self._thread, partial(fn, *args)),
                                      self.timeout * 2)

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

    async def aclose(self) -> None:
        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None
        await asyncio.get_running_loop().run_in_executor(self._thread, close)
        self._thread.shutdown(wait=False)
