"""Which member of a federation a launch goes to: weighted rendezvous (highest random weight)
hashing on the repository, so every ref of a repository lands on one member's image cache, and a
member leaving or joining moves only the repositories it gains or loses.

Each member scores ``weight / -ln(h)`` for the repository, with ``h`` a 64-bit hash of (repository,
member) mapped into (0, 1); the highest score wins, and the ranking is the fallback order.
"""

from __future__ import annotations

import math
from hashlib import blake2b

SPAN = float(2 ** 64)


def score(key: str, member: str, weight: float) -> float:
    digest = int.from_bytes(blake2b(f"{key}\0{member}".encode(), digest_size=8).digest(), "big")
    unit = (digest + 0.5) / SPAN  # strictly inside (0, 1)
    return weight / -math.log(unit)


def rank(key: str, members: dict[str, float]) -> list[str]:
    """Members (name -> weight > 0) best first for `key`."""
    return sorted((m for m, w in members.items() if w > 0),
                  key=lambda m: (score(key, m, members[m]), m), reverse=True)


def repository_key(path: str) -> str:
    """The routing key of a /build/<provider>/<spec> path: the repository without its ref, so all
    its refs share one member (a DOI record is its own key). Case does not matter."""
    parts = path.lower().strip("/").split("/")
    if len(parts) >= 4 and parts[0] == "build" and parts[1] in ("gh", "gl", "git", "gist"):
        return "/".join(parts[1:-1])
    return "/".join(parts[1:])
