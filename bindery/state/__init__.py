"""State that outlives one process: see base.py for the contract."""

from __future__ import annotations

import sqlite3

from bindery.settings import Settings
from bindery.state.base import StateStore, StoreDamaged


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """What the stores raise when they cannot answer (down, locked beyond the timeout)."""
    errors: tuple[type[BaseException], ...] = (OSError, TimeoutError, sqlite3.Error, StoreDamaged)
    try:
        from redis.exceptions import RedisError
        return (*errors, RedisError)
    except ImportError:
        return errors


def open_store(settings: Settings) -> StateStore:
    """The store the settings name: SQLite in the data folder, or Redis for several replicas."""
    bounds = {"retention": settings.state.state_retention_seconds, "poll": settings.state.state_poll_seconds,
              "timeout": settings.state.state_timeout}
    if settings.state.state_url.startswith(("redis://", "rediss://", "unix://")):
        from bindery.state.redis_store import RedisStore
        return RedisStore(settings.state.state_url, **bounds)
    if settings.state.state_url:
        raise ValueError(f"state_url {settings.state.state_url!r}: expected empty (SQLite in the data "
                         "folder) or redis://host:port/db")
    from bindery.state.sqlite_store import SQLiteStore
    return SQLiteStore(settings.state_path, **bounds)
