"""The events a launch produces: what every watcher (event stream, CLI) sees.

Phases follow BinderHub's event stream so existing clients understand them.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Phase = Literal[
    "waiting", "fetching", "building", "pushing", "built", "launching", "ready", "failed", "unknown"
]
TERMINAL_PHASES = frozenset({"ready", "failed"})


class Event(BaseModel):
    """One progress event. Extra fields (url, token, image, progress, ...) ride along as given."""

    model_config = ConfigDict(extra="allow", frozen=True)

    phase: Phase
    message: str = ""

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES

    def data(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    def to_json(self) -> str:
        return json.dumps(self.data(), separators=(",", ":"))


def failed(message: str, status_code: int | None = None, **extra: Any) -> Event:
    """A failed event; status_code is set where the request itself was at fault (4xx)."""
    if status_code is not None:
        extra["status_code"] = status_code
    return Event(phase="failed", message=message, **extra)


class LaunchError(Exception):
    """A launch cannot go on; its message is for the person who asked (it becomes a failed event)."""

    def __init__(self, message: str, status_code: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.extra = extra  # more fields of the failed event (e.g. build_log_url)

    def event(self) -> Event:
        return failed(self.message, self.status_code, **self.extra)


class StoreFull(LaunchError):
    """A build or pull ran out of disk in an engine's image store (``store``: run or build): the
    launch fails saying so, and that store's cleaner is asked for a pass at once."""

    def __init__(self, store: str, message: str, **extra: Any) -> None:
        super().__init__(message, 507, **extra)
        self.store = store


NO_SPACE = "no space left on device"  # what engines and file systems say when a disk is full


class RepositoryRedirected(LaunchError):
    """git was answered with a redirect it does not follow (bindery/providers/redirects.py does)."""
