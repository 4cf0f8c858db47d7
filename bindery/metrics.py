"""Prometheus metrics: BinderHub's names and labels (so existing dashboards work) plus bindery's own.

One `Metrics` object per service instance, with its own registry: no hidden global state.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600, float("inf"))


OTHER_REPO = "other"


class Metrics:
    def __init__(self, max_repo_labels: int = 500) -> None:
        # The `repo` label is bounded: only repositories that launched or built successfully get
        # their own value, up to max_repo_labels; the rest are counted as "other". Without this,
        # everyone typing a made-up repository URL would grow /metrics without end.
        self.max_repo_labels = max_repo_labels
        self._repo_labels: set[str] = set()
        r = self.registry = CollectorRegistry()
        self.build_time = Histogram("binderhub_build_time_seconds", "Build time",
                                    ["status"], buckets=BUCKETS, registry=r)
        self.launch_time = Histogram("binderhub_launch_time_seconds", "Launch time",
                                     ["status", "retries"], buckets=BUCKETS, registry=r)
        self.build_count = Counter("binderhub_build_count", "Builds by outcome",
                                   ["status", "provider", "repo"], registry=r)
        self.launch_count = Counter("binderhub_launch_count", "Launches by outcome",
                                    ["status", "provider", "repo"], registry=r)
        self.inprogress_builds = Gauge("binderhub_inprogress_builds", "Builds in progress",
                                       registry=r)
        self.inprogress_launches = Gauge("binderhub_inprogress_launches",
                                         "Launches in progress", registry=r)
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

    def repo_label(self, repo: str, admit: bool = False) -> str:
        """`repo` if it has (or, after a success, gets) its own label value, else "other"."""
        if repo in self._repo_labels:
            return repo
        if admit and len(self._repo_labels) < self.max_repo_labels:
            self._repo_labels.add(repo)
            return repo
        return OTHER_REPO
