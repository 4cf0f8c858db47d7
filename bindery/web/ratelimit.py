"""A per-key token bucket with bounded memory, for the door's per-client-address launch limit.

A bucket holds up to ``limit`` launches and refills evenly over ``period`` seconds, so a client may
burst ``limit`` launches and then gets one more every ``period / limit`` seconds. Buckets that have
refilled completely carry no information and are dropped; when more than ``max_keys`` clients are
tracked the least recently seen are forgotten (forgetting only ever favours a client, never blocks it).

:class:`SharedTokenBucket` is the same bucket kept in the state store (bindery/state/), so every
process of the service spends from one bucket per client; a full bucket's record expires.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bindery.state.base import StateStore


@dataclass(frozen=True)
class Quota:
    """The state of one client's bucket after a request, in the terms of the RateLimit headers."""

    allowed: bool
    limit: int
    remaining: int  # whole launches left right now
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until the next launch is allowed (0 when allowed)

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def quota_of(limit: int, rate: float, tokens: float, allowed: bool) -> Quota:
    """How a bucket of `limit` refilling `rate` tokens per second stands with `tokens` left."""
    missing = limit - tokens
    return Quota(
        allowed=allowed,
        limit=limit,
        remaining=int(math.floor(tokens + 1e-9)),
        reset=int(math.ceil(missing / rate - 1e-9)) if missing > 0 else 0,
        retry_after=0 if allowed else max(1, int(math.ceil((1 - tokens) / rate))),
    )


class TokenBucket:
    def __init__(
        self,
        limit: int,
        period: float = 60.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.rate = limit / period  # tokens per second
        self.max_keys = max_keys
        self.clock = clock
        # key -> (tokens, time of last update); ordered by last use for eviction
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str, now: float) -> float:
        tokens, then = self._buckets.get(key, (float(self.limit), now))
        return min(float(self.limit), tokens + (now - then) * self.rate)

    def _quota(self, tokens: float, allowed: bool) -> Quota:
        return quota_of(self.limit, self.rate, tokens, allowed)

    def peek(self, key: str) -> Quota:
        """The client's quota without spending anything (for headers on other responses)."""
        return self._quota(self._level(key, self.clock()), True)

    def take(self, key: str) -> Quota:
        """Spend one launch if the bucket has one; say how things stand either way."""
        now = self.clock()
        tokens = self._level(key, now)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        self._prune(now)
        return self._quota(tokens, allowed)

    def _prune(self, now: float) -> None:
        # Drop full buckets from the cold end first; then, if still too many, the least recent.
        while self._buckets:
            key, (tokens, then) = next(iter(self._buckets.items()))
            full = tokens + (now - then) * self.rate >= self.limit
            if not full and len(self._buckets) <= self.max_keys:
                break
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class SharedTokenBucket:
    """Buckets in the state store: the take is one atomic change across processes."""

    def __init__(self, limit: int, period: float, store: StateStore) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.period = period
        self.store = store

    async def take(self, key: str, spend: bool = True) -> Quota:
        tokens, allowed = await self.store.take_token(key, self.limit, self.period, time.time(),
                                                      spend)
        return quota_of(self.limit, self.limit / self.period, tokens, allowed or not spend)

    async def peek(self, key: str) -> Quota:
        return await self.take(key, spend=False)
