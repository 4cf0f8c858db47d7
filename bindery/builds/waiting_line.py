"""The build queue's waiting line, shared through the state store, so that queue positions and the
order in which waiting builds get a slot hold across every bindery process of a service.

One record (kind ``build-queue``) holds the line: entries ``{image, repo, client, owner, seen}`` in
arrival order, and ``running``: which client each process's running builds were asked for by (the
queue's per-client cap and its turns between clients hold across processes). Each process, on every scheduling pass, adds its own waiting builds (at the end, once),
refreshes their ``seen`` time, drops its entries that no longer wait, and drops anyone's entries not
refreshed for ``stale_after`` seconds (their process died: its launches are taken over and submit
again). The pass then reads the whole line, so every process computes the same positions and starts
only the builds the line says come next. The running builds themselves are counted from the build
engine (see BuildQueue), never from here: the record only says whose they are.
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
    client: str = ""


@dataclass(frozen=True)
class LineView:
    waiting: list[Waiting]  # first in line first
    running: dict[str, str]  # image -> client, of the other processes' running builds
    served: dict[str, float]  # client -> when a build it asked for last started (any process)


class SharedWaitingLine:
    def __init__(self, store: StateStore, owner: str, stale_after: float = 15.0,
                 ttl: float = 3600.0) -> None:
        self.store = store
        self.owner = owner
        self.stale_after = stale_after
        self.ttl = ttl

    async def sync(self, mine: list[tuple[str, str, str]], running: list[tuple[str, str]] = (),
                   served: dict[str, float] | None = None) -> LineView:
        """Put this process's waiting builds (image, repo, client) in the line (keeping their
        place), take out its others and anyone's stale ones, record the clients of its running
        builds (image, client) and when each client's build last started here (`served`).
        Returns the line as every process sees it."""
        now = time.time()
        wanted = {image: (repo, client) for image, repo, client in mine}

        def change(record: Record | None) -> tuple[Record | None, Record]:
            record = record or {}
            kept: list[dict[str, Any]] = []
            placed: set[str] = set()
            for entry in record.get("entries", []):
                if now - entry["seen"] > self.stale_after:
                    continue
                if entry["owner"] != self.owner:
                    kept.append(entry)
                elif entry["image"] in wanted and entry["image"] not in placed:
                    kept.append({**entry, "seen": now})
                    placed.add(entry["image"])
            kept += [{"image": image, "repo": repo, "client": client, "owner": self.owner,
                      "seen": now} for image, (repo, client) in wanted.items()
                     if image not in placed]
            busy = [e for e in record.get("running", [])
                    if now - e["seen"] <= self.stale_after and e["owner"] != self.owner]
            busy += [{"image": image, "client": client, "owner": self.owner, "seen": now}
                     for image, client in running]
            # Turns matter only between clients still waiting or building: the rest is dropped,
            # so the record stays as small as the line.
            present = {e.get("client", "") for e in kept} | {e["client"] for e in busy}
            times = {c: t for c, t in {**record.get("served", {}), **(served or {})}.items()
                     if c in present}
            for client, at in record.get("served", {}).items():
                if client in times:
                    times[client] = max(times[client], at)
            new = {"entries": kept, "running": busy, "served": times}
            return (new if kept or busy else None), new

        line = await self.store.update(KIND, KEY, change, self.ttl)
        return LineView(
            [Waiting(e["image"], e["repo"], e["owner"], e.get("client", ""))
             for e in line["entries"]],
            {e["image"]: e["client"] for e in line["running"] if e["owner"] != self.owner},
            line["served"])

    async def leave(self, images: set[str]) -> None:
        """This process started (or dropped) these builds: they no longer wait."""
        if not images:
            return

        def change(record: Record | None) -> tuple[Record | None, None]:
            record = record or {}
            kept = [e for e in record.get("entries", [])
                    if not (e["owner"] == self.owner and e["image"] in images)]
            busy = record.get("running", [])
            return ({**record, "entries": kept} if kept or busy else None), None

        await self.store.update(KIND, KEY, change, self.ttl)
