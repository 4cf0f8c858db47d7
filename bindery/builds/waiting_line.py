"""The build queue's waiting line, shared through the state store, so that queue positions and the
order in which waiting builds get a slot hold across every bindery process of a service.

One record (kind ``build-queue``) holds the line: entries ``{image, repo, owner, seen}`` in arrival
order. Each process, on every scheduling pass, adds its own waiting builds (at the end, once),
refreshes their ``seen`` time, drops its entries that no longer wait, and drops anyone's entries not
refreshed for ``stale_after`` seconds (their process died: its launches are taken over and submit
again). The pass then reads the whole line, so every process computes the same positions and starts
only the builds the line says come next. The running builds themselves are counted from the build
engine (see BuildQueue), never from here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bindery.state.base import Record, StateStore

KIND, KEY = "build-queue", "waiting"


@dataclass(frozen=True)
class Waiting:
    image: str
    repo: str
    owner: str


class SharedWaitingLine:
    def __init__(self, store: StateStore, owner: str, stale_after: float = 15.0,
                 ttl: float = 3600.0) -> None:
        self.store = store
        self.owner = owner
        self.stale_after = stale_after
        self.ttl = ttl

    async def sync(self, mine: list[tuple[str, str]]) -> list[Waiting]:
        """Put this process's waiting builds (image, repo) in the line (keeping their place), take out
        its others and anyone's stale ones; the whole line, first in line first."""
        now = time.time()
        wanted = dict(mine)

        def change(record: Record | None) -> tuple[Record | None, list[dict[str, Any]]]:
            entries = [e for e in (record or {}).get("entries", [])
                       if now - e["seen"] <= self.stale_after]
            kept: list[dict[str, Any]] = []
            placed: set[str] = set()
            for entry in entries:
                if entry["owner"] != self.owner:
                    kept.append(entry)
                elif entry["image"] in wanted and entry["image"] not in placed:
                    kept.append({**entry, "seen": now})
                    placed.add(entry["image"])
            kept += [{"image": image, "repo": repo, "owner": self.owner, "seen": now}
                     for image, repo in mine if image not in placed]
            return ({"entries": kept} if kept else None), kept

        line = await self.store.update(KIND, KEY, change, self.ttl)
        return [Waiting(e["image"], e["repo"], e["owner"]) for e in line]

    async def leave(self, images: set[str]) -> None:
        """This process started (or dropped) these builds: they no longer wait."""
        if not images:
            return

        def change(record: Record | None) -> tuple[Record | None, None]:
            kept = [e for e in (record or {}).get("entries", [])
                    if not (e["owner"] == self.owner and e["image"] in images)]
            return ({"entries": kept} if kept else None), None

        await self.store.update(KIND, KEY, change, self.ttl)
