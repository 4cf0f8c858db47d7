"""Remove home volumes past their retention, and count what homes take on disk.

A home's last use is its state-store record (bindery/launches/homes.py: written by every launch
that mounts it, and by its resume link's use); a home is removed once ``home_retention_days`` have
passed since then, or at once when its person deleted it, but never while a container mounts it
(a running server keeps it; the next pass after its end removes it). A volume nothing records is
expired. The embedded stack's run engine holds the volumes (bindery/stack/home_volumes.py).

Homes count against their budget (``home_store_bytes``) in metrics and ``bindery status``; they are
not removed for being over it before their retention ends: a person's work outranks the cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker

from bindery.launches.homes import Homes
from bindery.stack import home_volumes

log = logging.getLogger(__name__)


@dataclass
class HomePass:
    before: int  # bytes the home files took when the pass began
    after: int
    removed: list[str] = field(default_factory=list)
    kept_in_use: list[str] = field(default_factory=list)  # expired, but a container mounts them

    @property
    def reclaimed(self) -> int:
        return max(0, self.before - self.after)


class HomeCleaner:
    def __init__(self, client: Callable[[], docker.APIClient], folder: Path, homes: Homes) -> None:
        self.client = client  # made per pass (a pass runs in a worker thread)
        self.folder = Path(folder)
        self.homes = homes

    def clean(self, used: dict[str, float], now: float | None = None) -> HomePass:
        """One pass, given each home's last use (Homes.last_used); `now` defaults to the homes'
        clock (tests move it)."""
        now = self.homes.clock() if now is None else now
        api = self.client()
        try:
            result = HomePass(home_volumes.folder_bytes(self.folder), 0)
            mounted = home_volumes.in_use(api)
            for name in home_volumes.names(api):
                if not self.homes.expired(name, used, now):
                    continue
                if name in mounted or not home_volumes.remove(api, name, self.folder):
                    result.kept_in_use.append(name)
                    continue
                result.removed.append(name)
            result.after = home_volumes.folder_bytes(self.folder)
        finally:
            api.close()
        if result.removed:
            log.info("homes: %d expired volumes removed, %d bytes reclaimed", len(result.removed),
                     result.reclaimed, extra={"store": "homes", "removed": result.removed[:50],
                                              "reclaimed": result.reclaimed})
        return result

