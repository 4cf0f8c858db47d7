"""Which hub user ran which repository, so an expired server link can offer to launch it again.

The app keeps one ``LaunchBook``: the stream handler calls ``book.remember(user, provider, spec)``
when a launch is ready; the "Binder not found" page calls ``book.lookup(user)``. Records live in memory, bounded (the oldest
are forgotten first): servers are culled within hours, and after a restart the page still explains
itself, only without the relaunch button.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Launch:
    user: str
    provider: str
    spec: str
    at: float  # time.time() when it was launched

    @property
    def launch_path(self) -> str:
        """Path (relative to bindery's root) of the launch page for the same repository."""
        return f"v2/{self.provider}/{self.spec}"


class LaunchBook:
    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Launch] = OrderedDict()
        self._lock = threading.Lock()  # the hub adapter may call from worker threads

    def remember(self, user: str, provider: str, spec: str) -> Launch:
        launch = Launch(user, provider, spec.strip("/"), time.time())
        with self._lock:
            self._entries[user] = launch
            self._entries.move_to_end(user)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return launch

    def lookup(self, user: str) -> Launch | None:
        with self._lock:
            return self._entries.get(user)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

