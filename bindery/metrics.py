"""Prometheus metrics: BinderHub's names and labels (so existing dashboards work) plus bindery's own.

One `Metrics` object per service instance, with its own registry: no hidden global state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

# BinderHub's bucket sets: builds and launches take very different times (its dashboards' quantiles
# are computed from these).
BUILD_BUCKETS = (60, 120, 300, 600, 1800, 3600, 7200, float("inf"))
LAUNCH_BUCKETS = (2, 5, 10, 20, 30, 60, 120, 300, 600, float("inf"))


OTHER_REPO = "other"


class Metrics:
    def __init__(self, max_repo_labels: int = 500) -> None:
        # The `repo` label is bounded: only repositories that launched or built successfully get
        # their own value, up to max_repo_labels; the rest are counted as "other". Without this,
        # everyone typing a made-up repository URL would grow /metrics without end.
        self.max_repo_labels = max_repo_labels
        self._repo_labels: set[str] = set()
        r = self.registry = CollectorRegistry()
        # BinderHub's meanings: a build's time from its start to its image pushed (status success or
        # failure); one attempt's time to start a server through the hub, after any build (status
        # success with retries = the failed attempts before it, retry or failure with retries -1);
        # launches counted once each: success, failure (the server did not start), or the quota
        # that refused it (pod_quota, repo_quota); builds and launches in progress right now.
        self.build_time = Histogram("binderhub_build_time_seconds", "Histogram of build times",
                                    ["status"], buckets=BUILD_BUCKETS, registry=r)
        self.launch_time = Histogram("binderhub_launch_time_seconds", "Histogram of launch times",
                                     ["status", "retries"], buckets=LAUNCH_BUCKETS, registry=r)
        self.build_count = Counter("binderhub_build_count", "Counter of builds by repo",
                                   ["status", "provider", "repo"], registry=r)
        self.launch_count = Counter("binderhub_launch_count", "Counter of launches by repo",
                                    ["status", "provider", "repo"], registry=r)
        self.inprogress_builds = Gauge("binderhub_inprogress_builds",
                                       "Builds currently in progress", registry=r)
        self.inprogress_launches = Gauge("binderhub_inprogress_launches",
                                         "Launches currently in progress", registry=r)
        self.internal_errors = Counter(
            "bindery_internal_errors", "Launches ended by an unexpected error in bindery (a bug: "
            "the service log has its traceback)", registry=r)
        self.queue_length = Gauge("bindery_build_queue_length", "Builds waiting for a slot",
                                  registry=r)
        self.slots_used = Gauge("bindery_build_slots_used", "Build slots in use", registry=r)
        self.cleanups = Counter("bindery_launch_cleanups", "Failed or abandoned launches cleaned up",
                                ["outcome"], registry=r)
        self.build_joins = Counter("bindery_build_joins",
                                   "Requests that joined a build already under way", registry=r)
        # Outcomes as bindery's logs name them (the alert rules' inputs; BinderHub's counters above
        # keep BinderHub's own meaning).
        self.launch_outcomes = Counter("bindery_launch_outcomes", "Launches by how they ended: "
                                       "ready, failed, abandoned", ["status"], registry=r)
        self.build_outcomes = Counter("bindery_build_outcomes", "Builds by how they ended: "
                                      "success, failure", ["status"], registry=r)
        self.dependency_up = Gauge("bindery_dependency_up", "1 while a part bindery needs answers "
                                   "its health check (JupyterHub, Registry, engines, state store)",
                                   ["service"], registry=r)
        # Storage: each store's use against its budget, and what its cleaner took back.
        self.store_bytes = Gauge("bindery_store_bytes", "Bytes a store takes on disk, as last "
                                 "measured", ["store"], registry=r)
        self.store_budget = Gauge("bindery_store_budget_bytes", "Bytes a store may take",
                                  ["store"], registry=r)
        self.store_high = Gauge("bindery_store_high_mark_bytes", "Use above which a store's "
                                "cleaner removes images", ["store"], registry=r)
        self.store_reclaimed = Counter("bindery_store_reclaimed_bytes", "Bytes a store's cleaner "
                                       "took back", ["store"], registry=r)
        self.store_removed = Counter("bindery_store_removed_images", "Images a store's cleaner "
                                     "removed", ["store"], registry=r)
        self.store_clean_time = Counter("bindery_store_clean_seconds", "Seconds spent measuring "
                                        "and cleaning a store", ["store"], registry=r)

    def watch_github_rate_limit(self, read: Callable[[], int | None]) -> None:
        """binderhub_github_rate_limit_remaining, from the last GitHub API answer `read` saw
        (absent until there is one: a 0 before any request would look like an exhausted limit)."""
        self.registry.register(_RateLimit(read))

    def repo_label(self, repo: str, admit: bool = False) -> str:
        """`repo` if it has (or, after a success, gets) its own label value, else "other"."""
        if repo in self._repo_labels:
            return repo
        if admit and len(self._repo_labels) < self.max_repo_labels:
            self._repo_labels.add(repo)
            return repo
        return OTHER_REPO


class _RateLimit:
    """A collector for the rate limit GitHub's API last reported."""

    def __init__(self, read: Callable[[], int | None]) -> None:
        self.read = read

    def describe(self) -> list:
        return []  # the family exists only once GitHub has answered

    def collect(self) -> Iterator[GaugeMetricFamily]:
        remaining = self.read()
        if remaining is not None:
            yield GaugeMetricFamily("binderhub_github_rate_limit_remaining",
                                    "GitHub rate limit remaining", value=remaining)


class StackRestarts:
    """``bindery_stack_restarts_total{part}``: how often the stack's supervisor started a dead part
    again, read from its record at each scrape (the supervisor is a process of its own)."""

    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self.read = read

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("bindery_stack_restarts", "Times the stack's supervisor "
                                     "started a part that had died", labels=["part"])
        for part, restarts in sorted(self.read().items()):
            family.add_metric([part], restarts)
        yield family
