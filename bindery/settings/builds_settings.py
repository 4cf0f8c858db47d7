"""Builds: the queue's slots, limits, kept logs, and the buildpacks repositories build with.

Each field is also read from ``BINDERY_<FIELD>`` (upper case); see bindery/settings/__init__.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class BuildSettings(BaseModel):
    build_slots: int = Field(2, description="Builds running at once; more requests wait in a queue.")
    build_slots_per_repo: int = Field(
        1, description="Build slots one repository may hold at once, so one repo cannot starve others."
    )
    build_log_secret: SecretStr | None = Field(
        None, description="Secret that makes the keys of private repositories' build logs (a log "
        "of a repository reached with git_credentials is served only with its key, which only "
        "the launches of that build are given). Every web process of a service needs the same "
        "one. Empty: a random one kept in <data_dir>/secrets/build-logs.key.")
    build_slots_per_client: int = Field(
        1, description="Build slots the launches of one client (address; an IPv6 client is its /64) "
        "may hold at once; waiting builds take turns between clients, so one client asking for "
        "many unbuilt repositories cannot keep others waiting. 0: no cap (turns still apply).")
    build_timeout: float = Field(
        3600.0, description="Seconds a build may run before it is ended. Also the bound for a build "
        "whose engine or disk fails: those end at once with a failed event naming the cause.")
    build_memory_limit: str = Field("3G", description="Memory limit of a build (repo2docker).")
    build_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Networks (IPv4 CIDRs) a build step may reach although they are not public, "
        "besides the package index (pypi_index_url, and PyPI's file host) and the Debian mirror, "
        "whose addresses are allowed by themselves when the stack starts: e.g. a proxy in front "
        "of other package sources. Build steps (Dockerfile RUN, buildpack installs, postBuild) run on a network of "
        "their own that reaches the public internet, the host's DNS servers (port 53 only) and "
        "these, never the machine itself (the registry, the hub, bindery), other stacks or the "
        "networks launched servers may not reach (server_blocked_networks).")
    build_pids_limit: int = Field(
        4096, ge=64, description="Processes (and threads) the build steps of all of a stack's "
        "builds may have at once (a cgroup of their own): a fork bomb in a RUN step stops there.")
    build_disk_max_bytes: int = Field(
        4 * 1024**3, ge=64 * 1024**2,
        description="Bytes one build may write: no file of a step grows past it (the steps' "
        "file-size limit), and with the build store on a file system of its own "
        "(build_store_size >= 0) the build is stopped once the store grew by more than this times "
        "the builds running beside it. Either way the build fails naming disk and this budget. "
        "What all builds together may write is bounded by the build store's own file system.")
    build_store_size: int = Field(
        0, ge=-1,
        description="Bytes of the embedded build engine's image store: a file system of its own "
        "(ext4 in a sparse file under <data_dir>/stores, loop-mounted), so builds together can "
        "never fill the host's disk; a build that finds it full fails saying so. 0: half of the "
        "free space where data_dir is when the store is first made, at most 64 GiB. -1: no file "
        "system of its own (the store shares the host's disk).")
    build_output_max_bytes: int = Field(
        128 * 1024 * 1024, ge=64 * 1024,
        description="Bytes of output one build may print (its log, every line counted); past it "
        "the build is stopped and fails saying so. The engine's log file of a build is capped a "
        "little above this (containers.conf log_size_max), and each launch keeps at most "
        "session_log_max_bytes of it in the state store.")
    session_log_max_bytes: int = Field(
        1024 * 1024, ge=4096,
        description="Bytes of build output one launch session keeps in the state store (and a "
        "shared build keeps in memory for late joiners): beyond it only the build's phases and its "
        "end are kept, and the full log stays at its build-log URL.")
    build_image: str = Field(
        "", description="Image build containers run (repo2docker + bindery's buildpacks), in the "
        "build engine's store. Empty: made by `bindery up` from PyPI FROM the base image "
        "(localhost/bindery/repo2docker:<recipe-hash>).")
    build_slot_poll_seconds: float = Field(
        1.0, description="While waiting for a build slot, how often the build engine's running "
        "build containers (the count every bindery process shares) are checked again.")
    build_log_dir: Path | None = Field(
        None, description="Where each image build's log is kept, shared by every bindery process "
        "on the machine. Empty: <data_dir>/build-logs.")
    build_log_max_bytes: int = Field(
        2 * 1024 * 1024, description="Bytes of one build's log kept (its tail; the start is cut).")
    build_log_keep_days: float = Field(
        30.0, description="Days a build log is kept after its build ended.")
    build_log_keep_count: int = Field(
        2000, description="Build logs kept at most (the oldest are removed first).")
    build_log_total_bytes: int = Field(
        512 * 1024 * 1024, ge=0, description="Bytes all kept build logs may take together (the "
        "oldest are removed first). 0: bounded only by build_log_keep_count.")
    build_executor: Literal["engine", "kubernetes"] = Field(
        "engine", description="Where builds run: 'engine' = named containers on the build engine "
        "(build_docker_host); 'kubernetes' = named pods in k8s_namespace (bindery itself needs no "
        "engine socket then, and does not pre-pull: KubeSpawner's progress shows the pull).")
    buildpacks: Literal["standard", "mirror", "auto"] = Field(
        "auto",
        description="standard: repo2docker's own buildpacks (need Docker Hub and conda-forge). "
        "mirror: bindery's buildpacks, which need only the Debian mirror (debian_mirror) and a PyPI "
        "index (pypi_index_url). auto: per build, mirror unless Docker Hub and the conda channel "
        "both answer (probed within buildpacks_probe_timeout, remembered for "
        "buildpacks_probe_cache_seconds); the build log says which was picked and why.",
    )
    buildpacks_probe_timeout: float = Field(
        3.0, description="Seconds the auto probe waits for Docker Hub and the conda channel.")
    buildpacks_probe_cache_seconds: float = Field(
        300.0, description="Seconds an auto probe's answer is reused before probing again.")
    docker_hub_url: str = Field(
        "https://registry-1.docker.io/v2/",
        description="Registry the auto probe checks for repo2docker's standard base image.")
    conda_channel_url: str = Field(
        "https://conda.anaconda.org/conda-forge/",
        description="Conda channel the auto probe checks; reachable (with Docker Hub), "
        "environment.yml repositories build with repo2docker's own conda buildpack.")
    pypi_index_url: str = Field(
        "https://pypi.org/simple",
        description="PyPI index (simple API) mirror builds install Python packages from, e.g. a "
        "site's devpi or Artifactory; also set as the index inside built images. The host's CA "
        "certificates are trusted inside builds.")
    python_installer: Literal["uv", "pip"] = Field(
        "uv", description="What mirror builds install Python packages with: uv (fast) or pip.")
    python_suites: dict[str, str] = Field(
        default_factory=lambda: {"3.13": "trixie"},
        description="Pythons other than the base image's (bookworm: 3.11) that a runtime.txt may "
        "ask for, each from another suite of the Debian mirror (version → suite); such a Python "
        "runs the kernel from an environment of its own, as repo2docker does for Python 2.7.")
    runtime_strict: bool = Field(
        False,
        description="A runtime.txt asking for a Python the mirrors cannot provide fails the build "
        "(true) instead of building with the nearest available Python and a warning (false).")
    environment_yml: Literal["refuse", "translate"] = Field(
        "translate",
        description="environment.yml in mirror builds (no conda channel): translate (its pip: "
        "section and its conda packages' PyPI counterparts, common renames mapped, python= to the "
        "nearest Python here; every package left out or changed is in the launch's notice) or "
        "refuse (a clear failure saying to use requirements.txt).")
