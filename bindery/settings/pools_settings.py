"""Warm pools: started, never-used servers handed to a launch at once.

Each field is also read from ``BINDERY_<FIELD>`` (upper case); see bindery/settings/__init__.py.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class PoolSettings(BaseModel):
    pool_specs: dict[str, int] = Field(
        default_factory=dict,
        description="Repositories that keep warm servers: a JSON object mapping a regular expression "
        "(matched like quota_tiers and banned_specs: re.search, case-insensitive, against every spelling of the repository and its URL) to "
        "how many started, unused servers of the current image to keep, e.g. {\"^gh/org/course/\": 3}. "
        "A repository's pool starts after its first launch (which tells bindery how to resolve it). "
        "Pool servers count against max_servers and the per-repository limits; the refill never "
        "takes the last pool_headroom places of either (see pool_headroom).")
    pool_auto_rate: float = Field(
        0.0, description="Launches per minute (over pool_rate_window_seconds) above which any "
        "repository gets pool_auto_size warm servers. 0: off.")
    pool_auto_size: int = Field(2, description="Warm servers of a repository pooled by pool_auto_rate.")
    pool_rate_window_seconds: float = Field(
        300.0, description="The window over which pool_auto_rate's launch rate is measured.")
    pool_idle_seconds: float = Field(
        900.0, description="A pool without a claim for this many seconds (counted from its last "
        "claim, or from when a server of it was last ready: demand is not over before the pool "
        "could serve it) shrinks: an auto pool to zero, a configured one to its configured size.")
    pool_headroom: int = Field(
        1, description="Places of max_servers and of each repository's limit that pool servers never "
        "take: the refill starts a server only while (servers running or launching, pooled ones "
        "included) + 1 + pool_headroom ≤ the limit, so people's launches always find these places "
        "(a claimed pool server is already counted and needs no new place).")
    pool_refill_concurrency: int = Field(
        1, description="Pool servers started at once (across every pool and replica), so refills "
        "never crowd people's launches out of the hub.")
    pool_check_seconds: float = Field(
        5.0, description="Seconds between two rounds of the refiller (refill, retire, shrink, "
        "reconcile with the hub); pooled repositories are re-resolved every round (through the ref "
        "cache, ref_cache_seconds), so a new commit replaces the pool within both.")
