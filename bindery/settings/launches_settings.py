"""Launches and quotas: the hub bindery starts servers through, their confinement, quotas, pre-pulls and culling.

Each field is also read from ``BINDERY_<FIELD>`` (upper case); see bindery/settings/__init__.py.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr


class LaunchSettings(BaseModel):
    hub_url: str = Field(
        "",
        description="Public URL of JupyterHub's proxy; launched servers are reached under it. "
        "Empty: http://127.0.0.1:<proxy_port> (see `hub_public`).",
    )
    hub_api_url: str = Field(
        "", description="JupyterHub REST API URL. Empty: http://<hub_address>:<hub_port>/hub/api "
        "(see server_subnet)."
    )
    hub_api_token: SecretStr | None = Field(
        None,
        description="Token of the 'bindery' JupyterHub service. Empty: read from "
        "<data_dir>/secrets/hub-service-token (written by `bindery up`).",
    )
    hub_timeout: float = Field(10.0, description="Timeout in seconds for one hub API request.")
    launch_start_slots: int = Field(
        0, ge=0,
        description="Servers one bindery process starts at once; more launches wait in order of "
        "arrival, told so. 0: no limit. A crowd's starts share the CPU, so starting about two per "
        "core of the run machine halves the median wait of a crowd without slowing the last.")
    launch_timeout: float = Field(
        600.0, description="Seconds from the start request until a server must be ready."
    )
    launch_retries: int = Field(
        3, description="Attempts of a launch (and of its quota check) on transient hub errors. A hub "
        "that is down ends a launch within launch_retries × hub_timeout + Σ backoff (0.5, 1, 2, "
        "... ≤ 5 s) seconds; a hub that fails mid-spawn within launch_retries × (launch_timeout + "
        "cleanup).")
    server_mem_limit: str = Field(
        "2G", description="Memory limit of a launched server; a process beyond it is OOM-killed "
        "inside the server's container.")
    server_cpu_limit: float = Field(1.0, description="CPU limit of a launched server (CPUs).")
    server_pids_limit: int = Field(
        1024, description="Process (and thread) limit of a launched server: a fork bomb stops there.")
    server_tmp_size_mb: int = Field(
        1024, description="Size of the tmpfs a launched server gets as /tmp (MiB, counted in its "
        "memory). Its other writes land in the engine's overlay, which podman cannot bound without "
        "an XFS store with project quotas (see docs/containment.md).")
    server_subnet: str = Field(
        "", description="IPv4 network of the embedded stack's servers: its lower half is their "
        "bridge (gateway .1), the first address of its upper half is where the hub's API listens "
        "(added to the loopback interface). Empty: a /24 in 10.200.0.0/13 that no other stack on "
        "this machine uses, chosen when the hub starts (first try derived from data_dir).")
    server_blocked_networks: list[str] = Field(
        default_factory=lambda: [
            "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
            "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
            "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3"],
        description="Networks launched servers may not reach (JSON list of IPv4 CIDRs; nftables "
        "rules installed by `bindery up`). The host itself is closed to them except the hub's API "
        "and DNS on their gateway, whatever this says.")
    max_servers: int = Field(100, description="Quota: servers running at once in total.")
    max_servers_per_repo: int = Field(20, description="Quota: servers running at once per repository.")
    quota_tiers: dict[str, int] = Field(
        default_factory=dict,
        description="Higher (or lower) per-repository server quotas for chosen repositories: a JSON "
        "object mapping a regular expression (re.search, case-insensitive, like banned_specs: against "
        "'<provider>/<spec>' with the spec url-decoded, e.g. 'gh/org/repo/main', against every other "
        "spelling of the repository with its ref, e.g. 'git/https://github.com/org/repo/main', and against "
        "the repository URL) to that repository's "
        "limit, e.g. {\"^gh/org/course\": 200}. When several match, the highest limit wins; none: "
        "max_servers_per_repo.",
    )
    abandon_grace_seconds: float = Field(
        30.0,
        description="Seconds a launch keeps going after its last watcher disconnected; a watcher "
        "reconnecting in time (Last-Event-ID) resumes it, otherwise it is cancelled and its server "
        "and temporary user are removed.",
    )
    prepull: bool = Field(
        True,
        description="Pull the image onto the run side (through run_docker_host's Docker API) before "
        "asking the hub to start it, so the person sees pull progress instead of silence.",
    )
    prepull_timeout: float = Field(
        900.0, description="Seconds the pull of one image onto the run side may take before the "
        "launch fails."
    )
    prepull_progress_interval: float = Field(
        1.0, description="Least seconds between two pull-progress events of one launch."
    )
    prepull_concurrency: int = Field(
        2, description="Image pulls onto the run side at once; more wait (images share base layers, "
        "which concurrent pulls would each download again)."
    )
    warm_images: bool = Field(
        True,
        description="Keep the base image and the warm pools' current images on the run side: pulled "
        "when the service starts and checked every warm_images_interval seconds, so a new image's "
        "first launch pulls only its own layers. Needs prepull (the run side's Docker API).",
    )
    warm_images_interval: float = Field(
        300.0, gt=0, description="Seconds between two checks that the run side still has the warm "
        "images (a changed base image or a pool's new image is pulled at the latest then)."
    )
    cull_idle_seconds: int = Field(
        600, description="Idle servers (and their users) are removed by jupyterhub-idle-culler after "
        "this many seconds; it looks every cull_idle_seconds / 2, so removal happens within 1.5× this.")
    cull_max_age_seconds: int = Field(
        6 * 3600, description="Servers are culled after this many seconds, idle or not."
    )
    launch_log_dir: Path | None = Field(
        None, description="Folder of the launch event log: one JSON line per launch that started a "
        "server, in BinderHub's launch schema (binderhub.jupyter.org/launch), in one file per UTC "
        "day, events-YYYY-MM-DD.jsonl (the shape of mybinder.org's events archive). Empty: no file.")
    launch_log_keep_days: int = Field(
        30, ge=0, description="Days of launch event log files kept; older ones are deleted when a "
        "new day's file starts (0: keep all, for an archiver that removes them).")
    home_resume: bool = Field(
        True, description="Every anonymous launch gets a home (an engine volume; a PVC on Kubernetes) "
        "mounted at the server's home folder and a resume link (/v2/resume/<secret>) that brings it "
        "back on a new server of the same repository within home_retention_days of its last use. "
        "Off: anonymous servers keep nothing after they end.")
    home_per_person: bool = Field(
        False, description="A signed-in person has one home for every repository they launch (on: "
        "per person) instead of one home per person and repository (off).")
    home_size_mb: int = Field(
        512, ge=16, le=1024 * 1024, description="Size limit of one home in MiB: the volume is a file "
        "system of this size (a loop-mounted ext4 file on the embedded stack, the PVC's requested "
        "capacity on Kubernetes), so a full home fails writes, not the machine.")
    home_retention_days: float = Field(
        30.0, gt=0, description="A home (and its resume link) is removed this many days after its "
        "last launch; the storage keeper's home cleaner removes expired volumes.")
    home_merge_timeout: float = Field(
        120.0, gt=0, description="Seconds the merge of the repository's files into a home may take "
        "before the server starts (it runs in a container without network or capabilities); "
        "beyond it the launch fails.")
    home_archive_timeout: float = Field(
        300.0, gt=0, description="Seconds a download of a home as an archive may take.")
    launch_log_to_service_log: bool = Field(
        False, description="Also write each launch event line to the service log (logger "
        "bindery.launch_events), for log shippers.")
