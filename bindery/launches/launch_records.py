"""Which hub user ran which repository, so an expired server link can offer to launch it again.

The app keeps one ``LaunchBook`` over the state store (bindery/state/): the session that reaches
`ready` calls ``await book.remember(user, provider, spec)``; the "Binder not found" page calls
``await book.lookup(user)``, on whichever process it lands. A record lives as long as a server may
(cull_max_age_seconds, then the server is culled anyway), so the records stay bounded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bindery.state.base import StateStore


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
    def __init__(self, store: StateStore, keep_seconds: float) -> None:
        self.store = store
        self.keep_seconds = keep_seconds

    async def remember(self, user: str, provider: str, spec: str) -> Launch:
        launch = Launch(user, provider, spec.strip("/"), time.time())
        await self.store.remember_launch(user, {"provider": launch.provider, "spec": launch.spec,
                                                "at": launch.at}, self.keep_seconds)
        return launch

    async def lookup(self, user: str) -> Launch | None:
        record = await self.store.launch_record(user)
        if record is None:
            return None
        return Launch(user, record["provider"], record["spec"], record["at"])
