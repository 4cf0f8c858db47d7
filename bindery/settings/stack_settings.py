"""The embedded single-machine stack `bindery up` runs: base image, engines, hub and proxy ports.

Each field is also read from ``BINDERY_<FIELD>`` (upper case); see bindery/settings/__init__.py.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class StackSettings(BaseModel):
    run_store_bytes: int = Field(
        0, ge=0, description="Bytes the run engine's image store may take (servers' images and "
        "their containers). Above store_high_ratio of it, images no container uses are removed, "
        "least recently used first, until under store_low_ratio. 0: a quarter of the data "
        "folder's disk.")
    build_store_bytes: int = Field(
        0, ge=0, description="Bytes the build engine's image store may take (built images, build "
        "layers), kept the same way as run_store_bytes. 0: a fifth of the data folder's disk.")
    store_high_ratio: float = Field(
        0.9, gt=0, le=1, description="Share of a store's budget above which its cleaner removes "
        "images (the high mark).")
    store_low_ratio: float = Field(
        0.7, gt=0, le=1, description="Share of a store's budget a cleaning pass brings its use "
        "under (the low mark).")
    home_store_bytes: int = Field(
        0, ge=0, description="Budget in bytes of the people's home volumes on the run engine (their "
        "files' allocated blocks), shown in metrics and `bindery status`; homes are removed by "
        "retention (home_retention_days), never for being over it. 0: a tenth of the data folder's "
        "disk.")
    store_clean_interval_seconds: float = Field(
        60.0, gt=0, description="Seconds between two passes of the image stores' cleaners (one "
        "process of the service cleans at a time).")
    supervise: bool = Field(
        True, description="`bindery up` also starts the stack's supervisor, which starts again any "
        "part of the stack that died (engines, registry, hub and proxy, web service or replicas, "
        "HAProxy, Redis) and logs it (<data_dir>/logs/supervisor.log); `bindery status` shows "
        "each part's restarts.")
    supervise_interval_seconds: float = Field(
        2.0, gt=0, description="Seconds between two looks of the stack's supervisor.")
    supervise_backoff_cap_seconds: float = Field(
        60.0, gt=0, description="Longest pause between two attempts of the supervisor to start a "
        "part that does not come back (pauses double from 1 s up to this).")
    prometheus_port: int = Field(
        9090, description="Loopback port of the Prometheus `bindery up --monitoring` starts.")
    prometheus_scrape_seconds: float = Field(
        15.0, gt=0, description="Seconds between two scrapes (and rule evaluations) of that "
        "Prometheus.")
    prometheus_retention_days: float = Field(
        15.0, gt=0, description="Days of metrics that Prometheus keeps.")
    store_clean_grace_seconds: float = Field(
        600.0, ge=0, description="Images launched or seen in use this recently are never removed "
        "(a launch may be pulling or starting one right now).")
    hub_port: int = Field(8081, description="Port the embedded hub's API listens on, only at the "
                          "hub address (see server_subnet), never on every interface.")
    proxy_port: int = Field(8000, description="Public port of the embedded configurable-http-proxy.")
    proxy_api_port: int = Field(8001, description="API port of the embedded configurable-http-proxy.")
    hub_slow_spawn_timeout: float = Field(
        10.0,
        description="Seconds the embedded hub holds a start request before answering 202 "
        "(JupyterHub's slow_spawn_timeout). bindery follows spawns to their end either way.",
    )
    hub_start_timeout: float = Field(
        300.0, description="Seconds the embedded hub allows a server (incl. image pull) to start."
    )
    hub_http_timeout: float = Field(
        120.0, description="Seconds the embedded hub waits for a started server to answer HTTP."
    )
    hub_engine_threads: int = Field(
        8, ge=1, le=64,
        description="Threads the embedded hub's spawner makes engine calls on (create, start, "
        "inspect), shared by all spawns. DockerSpawner's own is 1, which queues a crowd's calls.")
    hub_ready_poll_seconds: float = Field(
        0.5, gt=0, le=5,
        description="Seconds before the embedded hub spawner first asks a starting server whose "
        "log has not yet said that it runs; later asks back off to 4 s (it asks at once when the "
        "log says so).")
    hub_db_wal: bool = Field(
        True,
        description="The embedded hub's SQLite database in write-ahead-log mode with "
        "synchronous=NORMAL (as bindery's own state store): its commits, about ten per spawn, no "
        "longer wait for the disk. A power loss (not a crash) can lose the last commits; the "
        "database stays consistent. false: SQLite's default journal, each commit synced.")
    hub_concurrent_spawn_limit: int = Field(
        200, ge=1,
        description="Spawns the embedded hub runs at once before answering 429 "
        "(JupyterHub's concurrent_spawn_limit; its default 100 refuses the 101st of a crowd).")
    proxy_command: str = Field(
        "",
        description="configurable-http-proxy executable of the embedded hub. Empty: "
        "node_modules/.bin/configurable-http-proxy next to the project, else from PATH.",
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "bindery",
        description="Cache shared by all stacks on this machine (whatever their data_dir): the "
        "saved base image, so a second stack does not debootstrap again.",
    )
    debian_mirror: str = Field(
        "",
        description="Debian mirror the base image is debootstrapped from. Empty: the first "
        "http(s) mirror in /etc/apt/sources.list(.d).",
    )
    base_image: str = Field(
        "",
        description="Jupyter-ready image repositories are built FROM and servers fall back to. "
        "Empty: <registry_host>/bindery/base:<recipe-hash>, built by `bindery up` when missing.",
    )
    stack_wait_timeout: float = Field(
        60.0, description="Seconds `bindery up` waits for one part (engine, registry, hub, web) to "
        "answer before it gives up and names the part's log file."
    )
    build_docker_host: str = Field(
        "", description="Docker-API socket of the build side. Empty: the embedded build podman."
    )
    run_docker_host: str = Field(
        "", description="Docker-API socket of the run side (DockerSpawner). Empty: the embedded run "
        "podman, a separate image store, so every first launch of an image pulls it."
    )
