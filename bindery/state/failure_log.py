"""The last failed launches, for an operator's first look (`bindery status`): one bounded record.

Each failure keeps its launch id, so the whole story is one search in the service's log away.
"""

from __future__ import annotations

from typing import Any

from bindery.state.base import StateStore

KIND, KEY = "launch-failures", "recent"
KEEP = 20  # failures kept (the newest)
TTL = 30 * 86400.0


async def remember(store: StateStore, failure: dict[str, Any]) -> None:
    def add(record):
        items = ([failure] + list((record or {}).get("items", [])))[:KEEP]
        return {"items": items}, None

    await store.update(KIND, KEY, add, TTL)


async def recent(store: StateStore) -> list[dict[str, Any]]:
    """Newest first."""
    record = await store.get(KIND, KEY)
    return list((record or {}).get("items", []))
