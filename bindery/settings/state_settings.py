"""What outlives one process: where launch sessions, records, reservations and rate-limit buckets live (bindery/state/).

Each field is also read from ``BINDERY_<FIELD>`` (upper case); see bindery/settings/__init__.py.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class StateSettings(BaseModel):
    state_url: str = Field(
        "",
        description="Where launch sessions and their events, launch records, quota reservations "
        "and rate-limit buckets live, so a stream resumes on any process and after a restart. "
        "Empty: SQLite at <data_dir>/state.sqlite (one machine, no extra server); "
        "'redis://host:port/db': Redis (several replicas).")
    state_retention_seconds: float = Field(
        3600.0, description="Seconds a launch session and its events are kept after its last "
        "event; launch records (the 424 page's relaunch offer) are kept cull_max_age_seconds.")
    state_store_bytes: int = Field(
        0, description="Bytes the state store may take (SQLite's pages in use, or the Redis "
        "server's memory). Above store_high_ratio of it, ended launch sessions and their events are "
        "forgotten, least recently watched first, until under store_low_ratio; running launches and "
        "other records are never removed for it. 0: 2% of the disk the data folder is on.")
    state_heartbeat_seconds: float = Field(
        2.0, description="Seconds between a process's heartbeats on the launch sessions it runs.")
    state_stale_seconds: float = Field(
        10.0, description="A session whose owner has not beaten its heartbeat for this many seconds "
        "is taken over by the process a client reconnects to (the owner died: kill -9, crash).")
    state_poll_seconds: float = Field(
        0.1, description="Longest pause between two reads of a session's events by a stream "
        "waiting for new ones (SQLite polls; Redis is woken by pub/sub and polls as a fallback).")
    state_timeout: float = Field(
        5.0, description="Timeout in seconds for one state-store operation (Redis request, SQLite "
        "lock wait).")
