"""bindery's settings: one typed object, each setting declared once with its help text.

Every field can be set from the environment as ``BINDERY_<NAME>`` (upper case). ``bindery settings``
prints them all with their help, so the documentation comes from this file.
"""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BINDERY_", extra="ignore", frozen=False)

    # -- where state lives ---------------------------------------------------------------------
    data_dir: Path = Field(
        Path.home() / ".bindery",
        description="Folder holding all state of the embedded stack: configs, image stores, sockets, "
        "logs, secrets, the hub database and the registry's blobs.",
    )

    # -- shared state: what outlives one process (bindery/state/, issue 9) ----------------------
    state_url: str = Field(
        "",
        description="Where launch sessions and their events, launch records, quota reservations "
        "and rate-limit buckets live, so a stream resumes on any process and after a restart. "
        "Empty: SQLite at <data_dir>/state.sqlite (one machine, no extra server); "
        "'redis://host:port/db': Redis (several replicas).")
    state_retention_seconds: float = Field(
        3600.0, description="Seconds a launch session and its events are kept after its last "
        "event; launch records (the 424 page's relaunch offer) are kept cull_max_age_seconds.")
    state_heartbeat_seconds: float = Field(
        2.0, description="Seconds between a process's heartbeats on the launch sessions it runs.")
    state_stale_seconds: float = Field(
        10.0, description="A session whose owner has not beaten its heartbeat for this many seconds "
        "is taken over by the process a client reconnects to (the owner died: kill -9, crash).")
    state_poll_seconds: float = Field(
        0.1, description="Longest pause between two reads of a session's events by a stream "
        "waiting for new ones (SQLite polls; Redis is woken by pub/sub and polls as a fallback).")
    state_timeout: float = Field(
        5.0, description="Timeout in seconds for one state-store operation (Redis request, SQLite "
        "lock wait).")
    shutdown_seconds: float = Field(
        10.0, description="Seconds a SIGTERMed web service takes to hand its launches over (release "
        "them, end their streams so clients reconnect elsewhere) before it exits.")

    # -- bindery's web service -----------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address bindery's web service listens on.")
    port: int = Field(8585, description="Port bindery's web service listens on.")
    public_url: str = Field(
        "",
        description="URL people use to reach bindery (for binder_launch_host and badges). "
        "Empty: http://<host>:<port>/.",
    )
    keepalive_seconds: float = Field(
        15.0, description="Seconds of silence on an event stream before a keepalive comment is sent."
    )

    # -- several web replicas behind a load balancer (issue 9, `bindery up --replicas N`) --------
    replicas: int = Field(
        1, ge=1, le=32,
        description="bindery web processes `bindery up` runs. 1: one process on <host>:<port>. More: "
        "each on its own loopback port behind HAProxy at <host>:<port>, sharing state through the "
        "stack's Redis (see redis_port).")
    redis_port: int = Field(
        6390, description="Loopback port of the stack's Redis (started by `bindery up` when replicas > 1 "
        "and state_url is empty; password in <data_dir>/secrets/redis).")

    # -- JupyterHub ----------------------------------------------------------------------------
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
    hub_timeout: float = Field(10.0, description="Timeout in seconds for one hub API request.")

    hub_http_timeout: float = Field(
        120.0, description="Seconds the embedded hub waits for a started server to answer HTTP."
    )

    # -- the embedded hub's spawner and crowds (bindery/stack/spawner.py, issue 11) --------
    hub_engine_threads: int = Field(
        8, ge=1, le=64,
        description="Threads the embedded hub's spawner makes engine calls on (create, start, "
        "inspect), shared by all spawns. DockerSpawner's own is 1, which queues a crowd's calls.")
    hub_ready_poll_seconds: float = Field(
        0.5, gt=0, le=5,
        description="Seconds before the embedded hub spawner first asks a starting server whose "
        "log has not yet said that it runs; later asks back off to 4 s (it asks at once when the "
        "log says so).")
    hub_concurrent_spawn_limit: int = Field(
        200, ge=1,
        description="Spawns the embedded hub runs at once before answering 429 "
        "(JupyterHub's concurrent_spawn_limit; its default 100 refuses the 101st of a crowd).")
    launch_start_slots: int = Field(
        0, ge=0,
        description="Servers one bindery process starts at once; more launches wait in order of "
        "arrival, told so. 0: no limit. A crowd's starts share the CPU, so starting about two per "
        "core of the run machine halves the median wait of a crowd without slowing the last.")
    proxy_command: str = Field(
        "",
        description="configurable-http-proxy executable of the embedded hub. Empty: "
        "node_modules/.bin/configurable-http-proxy next to the project, else from PATH.",
    )

    # -- embedded stack ------------------------------------------------------------------------
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

    # -- registry ------------------------------------------------------------------------------
    registry_port: int = Field(5000, description="Port of the embedded OCI registry (127.0.0.1).")
    registry_url: str = Field(
        "", description="Registry HTTP API base URL. Empty: http://127.0.0.1:<registry_port>."
    )
    image_prefix: str = Field(
        "bindery/", description="Repository prefix for built images inside the registry."
    )
    registry_timeout: float = Field(5.0, description="Timeout in seconds for one registry request.")
    registry_retries: int = Field(
        3, description="Attempts for the image existence check before a launch fails (never rebuilds "
        "because the registry is unreachable). An unreachable registry ends a launch within "
        "registry_retries × (registry_timeout + 2) seconds (backoff ≤ 2 s between attempts)."
    )

    # -- container engines ---------------------------------------------------------------------
    build_docker_host: str = Field(
        "", description="Docker-API socket of the build side. Empty: the embedded build podman."
    )
    run_docker_host: str = Field(
        "", description="Docker-API socket of the run side (DockerSpawner). Empty: the embedded run "
        "podman, a separate image store, so every first launch of an image pulls it."
    )

    # -- builds --------------------------------------------------------------------------------
    build_slots: int = Field(2, description="Builds running at once; more requests wait in a queue.")
    build_slots_per_repo: int = Field(
        1, description="Build slots one repository may hold at once, so one repo cannot starve others."
    )
    build_timeout: float = Field(
        3600.0, description="Seconds a build may run before it is ended. Also the bound for a build "
        "whose engine or disk fails: those end at once with a failed event naming the cause.")
    build_memory_limit: str = Field("3G", description="Memory limit of a build (repo2docker).")

    # -- build containers and kept build logs (bindery/builds/executors/engine.py, bindery/builds/build_logs.py) --
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

    # -- builds on Kubernetes (bindery/builds/executors/kubernetes.py, issue 13) --------------------------
    build_executor: Literal["engine", "kubernetes"] = Field(
        "engine", description="Where builds run: 'engine' = named containers on the build engine "
        "(build_docker_host); 'kubernetes' = named pods in k8s_namespace (bindery itself needs no "
        "engine socket then, and does not pre-pull: KubeSpawner's progress shows the pull).")
    k8s_api_url: str = Field(
        "", description="Kubernetes API server URL. Empty: the in-cluster config (the pod's "
        "service account).")
    k8s_namespace: str = Field(
        "", description="Namespace of build pods. Empty: the pod's own namespace (its service "
        "account's namespace file).")
    k8s_build_engine: Literal["host-socket", "dind", "podman"] = Field(
        "host-socket", description="Where build pods find a container engine: 'host-socket' = the "
        "node's engine socket (k8s_engine_socket), 'dind' = a docker-in-docker daemonset's socket "
        "on the node (k8s_engine_socket), 'podman' = a podman service sidecar in each build pod "
        "(privileged; see bindery/builds/executors/build_pod.py).")
    k8s_engine_socket: str = Field(
        "/var/run/docker.sock", description="Host path of the node's engine socket for "
        "host-socket and dind (e.g. /var/run/dind/docker.sock for a dind daemonset).")
    k8s_builder_image: str = Field(
        "", description="Image of build pods: bindery's repo2docker build image, pullable by the "
        "cluster's nodes.")
    k8s_podman_image: str = Field(
        "quay.io/podman/stable:v5.2", description="Image of the podman service sidecar "
        "(k8s_build_engine=podman).")
    k8s_push_secret: str = Field(
        "", description="Secret (kubernetes.io/dockerconfigjson) mounted into build pods as "
        "their docker config, so repo2docker can push. Empty: none.")
    k8s_node_selector: dict[str, str] = Field(
        default_factory=dict, description="nodeSelector of build pods (JSON object).")
    k8s_tolerations: list[dict[str, object]] = Field(
        default_factory=list, description="tolerations of build pods (JSON list of toleration "
        "objects).")
    k8s_build_service_account: str = Field(
        "", description="Service account of build pods. Empty: none, and no API token is mounted "
        "(automountServiceAccountToken: false).")
    k8s_timeout: float = Field(
        15.0, description="Seconds one Kubernetes API request may take.")

    # -- buildpacks: how repositories without a Dockerfile build (bindery/builds/buildpacks/) ---
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
        "refuse",
        description="environment.yml in mirror builds: refuse (a clear failure saying to use "
        "requirements.txt) or translate (its pip: section and the conda packages of the same name "
        "on PyPI, every untranslated package listed in the build log).")

    # -- launches ------------------------------------------------------------------------------
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
    # -- launched servers' confinement (untrusted code: issue 8, point 7) --
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
        "object mapping a regular expression (re.search against '<provider>/<spec>' with the spec "
        "url-decoded, e.g. 'gh/org/repo/main', and against the repository URL) to that repository's "
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
    cull_idle_seconds: int = Field(
        600, description="Idle servers (and their users) are removed by jupyterhub-idle-culler after "
        "this many seconds; it looks every cull_idle_seconds / 2, so removal happens within 1.5× this.")
    cull_max_age_seconds: int = Field(
        6 * 3600, description="Servers are culled after this many seconds, idle or not."
    )

    # -- warm pools (bindery/launches/pools.py, issue 11) -----------------------------------------
    pool_specs: dict[str, int] = Field(
        default_factory=dict,
        description="Repositories that keep warm servers: a JSON object mapping a regular expression "
        "(matched like quota_tiers: re.search against '<provider>/<spec>' and the repository URL) to "
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

    # -- providers -----------------------------------------------------------------------------
    github_url: str = Field("https://github.com", description="Base URL of the GitHub server (gh).")
    gitlab_url: str = Field("https://gitlab.com", description="Base URL of the GitLab server (gl).")
    gist_url: str = Field("https://gist.github.com", description="Base URL of the gist server.")
    git_allowed_schemes: list[str] = Field(
        default_factory=lambda: ["https", "http", "git"],
        description="URL schemes a repository URL may use (never file, ext, ssh).",
    )
    git_timeout: float = Field(20.0, description="Timeout in seconds for one git ls-remote.")

    # -- outbound policy: where user input may make bindery connect (bindery/outbound.py) -------
    repo_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR, e.g. '10.1.2.0/24') a repository's host may resolve to although "
        "they are not public. Every other loopback, private, link-local (169.254.169.254), "
        "unique-local, multicast or otherwise non-global address is refused before any connection. "
        "Empty: only public addresses.",
    )
    git_concurrency: int = Field(
        8, description="git subprocesses (ls-remote and friends) bindery runs at once; more wait.")

    # -- links people write: refs, APIs, DOI records, pre-built images, private repos (issue 12) --
    ref_cache_seconds: float = Field(
        60.0, description="Seconds a resolved ref (branch, tag, abbreviated SHA -> commit) is reused, "
        "so a crowd opening one link costs one resolution. 0: resolve every time (concurrent "
        "requests still share one).")
    ref_cache_entries: int = Field(10_000, description="Resolved refs kept at most (oldest go first).")
    sha_cache_repos: int = Field(
        20, description="Repositories kept in the abbreviated-SHA cache (<data_dir>/cache/commits: "
        "commit-only, treeless clones); the least recently used are removed beyond this.")
    git_fetch_timeout: float = Field(
        120.0, description="Seconds one fetch into the abbreviated-SHA cache may take.")
    github_api_url: str = Field(
        "", description="GitHub REST API used to resolve gh refs (with ETags). Empty: "
        "https://api.github.com when github_url is https://github.com, else none (git protocol).")
    gitlab_api_url: str = Field(
        "", description="GitLab REST API (v4) used to resolve gl refs. Empty: <gitlab_url>/api/v4 "
        "when gitlab_url is https://gitlab.com, else none (git protocol).")
    api_timeout: float = Field(
        10.0, description="Timeout in seconds for one request to a repository host's or DOI "
        "service's web API (and for each read of a file download).")
    git_credentials: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Tokens for private repositories: a JSON object mapping a URL prefix (e.g. "
        "'https://git.example.org/team/') to a token. Used for resolution and cloning of URLs "
        "under the longest matching prefix (git: an http.<prefix>.extraHeader passed through the "
        "environment, never in a URL or .git/config; APIs: an Authorization header).")
    zenodo_url: str = Field("https://zenodo.org", description="Base URL of the Zenodo (InvenioRDM) "
                            "service of the zenodo provider (spec: the DOI 10.5281/zenodo.<id>).")
    figshare_api_url: str = Field(
        "https://api.figshare.com", description="Figshare API base of the figshare provider (spec: "
        "the DOI 10.6084/m9.figshare.<id>[.v<version>]).")
    dataverse_url: str = Field(
        "https://dataverse.harvard.edu", description="Base URL of the Dataverse installation of the "
        "dataverse provider (spec: the dataset DOI, e.g. 10.7910/DVN/TJCLKP).")
    hydroshare_url: str = Field(
        "https://www.hydroshare.org", description="Base URL of HydroShare (spec: the resource id).")
    ckan_urls: list[str] = Field(
        default_factory=lambda: ["https://demo.ckan.org"],
        description="CKAN sites the ckan provider may fetch datasets from (spec: the url-escaped "
        "dataset URL, <site>/dataset/<name>).")
    doi_download_origins: list[str] = Field(
        default_factory=lambda: ["https://ndownloader.figshare.com"],
        description="Origins record files may be downloaded from besides the record's own service "
        "(a file link pointing anywhere else is refused, so a record cannot make bindery fetch "
        "from an arbitrary address).")
    doi_max_bytes: int = Field(
        2 * 1024**3, description="Largest total size of one DOI record's files that is downloaded.")
    doi_max_files: int = Field(1000, description="Most files of one DOI record that are downloaded.")
    prebuilt_registries: list[str] = Field(
        default_factory=list,
        description="Image name prefixes (e.g. '127.0.0.1:5000/bindery/', 'quay.io/myteam/') of "
        "pre-built images the `image` provider may launch as they are (spec: the image reference). "
        "Empty: the image provider is off.")
    api_only: bool = Field(
        False, description="Run as a build service (BinderHub's api-only mode): only /build, "
        "/health, /versions and /metrics; every /build builds and pushes without launching; no hub "
        "needed. Needs build_token_secret or allowed_specs.")

    # -- the front door (abuse controls, see bindery/web/door.py) -----------------------------
    banned_specs: list[str] = Field(
        default_factory=list,
        description="Regular expressions (re.search, ignoring case) matched against '<provider>/<spec>' "
        "(spec url-decoded, e.g. 'gh/org/repo/main') and against every other spelling of the same "
        "repository ('git/https://github.com/org/repo/main', no '.git' or trailing '/'); a match "
        "refuses the launch with banned_message.",
    )
    banned_message: str = Field(
        "This repository cannot be launched here: it is on this service's list of disabled "
        "repositories. Contact the service's operators if you think that is a mistake.",
        description="Message shown when a launch matches banned_specs.",
    )
    allowed_specs: list[str] = Field(
        default_factory=list,
        description="Regular expressions matched like banned_specs (ignoring case, every spelling of "
        "the repository). Empty: every repository may launch; otherwise only those matching one of "
        "them.",
    )
    rate_limit_per_minute: int = Field(
        0,
        description="Launches one client address may start per minute (a token bucket that refills "
        "evenly). 0: no limit.",
    )
    blocked_networks: list[str] = Field(
        default_factory=list,
        description="Client networks (CIDR, e.g. '203.0.113.0/24' or '2001:db8::/32') that may not "
        "launch anything.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) of reverse proxies whose X-Forwarded-For header is believed when "
        "finding a client's address. Empty: the header is ignored and the peer address is used.",
    )
    max_open_launches_per_client: int = Field(
        50, description="Launch sessions one client address may have open (not yet ready or failed) "
        "at once; beyond it a launch is refused with an in-band 429. A classroom behind one NAT "
        "address launches together: leave room for it. 0: no limit.")
    max_open_launches: int = Field(
        1000, description="Launch sessions open at once in total; beyond it a launch is refused with "
        "an in-band 429. 0: no limit.")
    metrics_repo_labels: int = Field(
        500, description="Repositories that get their own value of the `repo` metric label (the first "
        "ones to launch or build successfully); every other repository is counted as 'other', so "
        "/metrics stays bounded whatever people type.")
    build_token_secret: SecretStr | None = Field(
        None,
        description="Secret that signs build tokens. Set: every launch needs a valid build_token "
        "(launch pages embed one, bound to the repository and the page's origin). Empty: no tokens.",
    )
    build_token_expiry_seconds: int = Field(
        300, description="Seconds a build token stays valid after the launch page issued it."
    )

    # -- releases and deploys ------------------------------------------------------------------
    artifact_dir: Path | None = Field(
        None,
        description="Artifact store folder: `bindery release` puts wheels and index.json here, deploys "
        "install from here. Empty: <data_dir>/artifacts.",
    )
    artifact_wait_timeout: float = Field(
        600.0, description="Seconds a deploy waits for its version's artifact to appear in the store "
        "before it fails naming the version and the store."
    )
    deploy_dir: Path | None = Field(
        None,
        description="Deploy folder: a git repository with one <instance>.toml per instance (version + "
        "settings), the record of verified versions and the per-instance state. Empty: <data_dir>/deploy.",
    )

    # -- derived values ------------------------------------------------------------------------
    @property
    def web_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}/"

    @property
    def hub_public(self) -> str:
        """Public URL of the hub's proxy (no trailing slash)."""
        return (self.hub_url or f"http://127.0.0.1:{self.proxy_port}").rstrip("/")

    # The data folder's layout is declared once, in bindery/datadir.py; these name its parts for the service.
    @property
    def logs_dir(self) -> Path:
        return self._layout().logs

    @property
    def data_cache_dir(self) -> Path:
        """Per-data_dir caches of the service (fetched DOI records, treeless clones for abbreviated SHAs)."""
        return self._layout().work_cache

    def _layout(self):  # noqa: ANN202 - StackPaths; imported here because paths.py imports this module
        from bindery.datadir import StackPaths

        return StackPaths.of(self)

    @property
    def build_logs_path(self) -> Path:
        return self.build_log_dir or self.data_dir / "build-logs"

    @property
    def hub_api(self) -> str:
        return (self.hub_api_url or f"http://{self.hub_address}:{self.hub_port}/hub/api").rstrip("/")

    @property
    def stack_id(self) -> str:
        """Short id of the embedded stack (from its data_dir): labels its containers, names its
        network and firewall table."""
        return stack_id_of(Path(self.data_dir).expanduser().absolute())

    @property
    def server_network(self) -> ipaddress.IPv4Network:
        """server_subnet; else the /24 the stack's hub chose when it started (one no other stack on
        this machine used, bindery/stack/server_network.py); else the data_dir's first choice."""
        if self.server_subnet:
            return ipaddress.IPv4Network(self.server_subnet)
        try:
            return ipaddress.IPv4Network(self.server_subnet_file.read_text().strip())
        except (OSError, ValueError):
            return derived_server_network(self.stack_id)

    @property
    def server_subnet_file(self) -> Path:
        """Where the embedded hub's start records the servers' /24 it chose."""
        return self._layout().conf / "server-subnet"

    @property
    def hub_address(self) -> str:
        """Where the embedded hub's API listens: reachable from the host and the servers' bridge."""
        return hub_address_in(self.server_network)

    @property
    def registry(self) -> str:
        return (self.registry_url or f"http://127.0.0.1:{self.registry_port}").rstrip("/")

    @property
    def registry_host(self) -> str:
        """host:port as it appears in image names."""
        return self.registry.split("://", 1)[-1]

    @property
    def state_path(self) -> Path:
        """The embedded state store's database (used when state_url is empty)."""
        return self.data_dir / "state.sqlite"

    @property
    def artifacts_path(self) -> Path:
        return self.artifact_dir or self.data_dir / "artifacts"

    @property
    def deploy_path(self) -> Path:
        return self.deploy_dir or self.data_dir / "deploy"

    @property
    def secrets_dir(self) -> Path:
        return self._layout().secrets

    @property
    def sockets_dir(self) -> Path:
        return self._layout().pids

    @property
    def build_socket(self) -> str:
        return self.build_docker_host or f"unix://{self.sockets_dir / 'build.sock'}"

    @property
    def run_socket(self) -> str:
        return self.run_docker_host or f"unix://{self.sockets_dir / 'run.sock'}"

    @property
    def hub_token_file(self) -> Path:
        """Where `bindery up` writes the bindery service's hub token (and the service reads it)."""
        return self.secrets_dir / "hub-service-token"

    def hub_token(self) -> str:
        if self.hub_api_token is not None:
            return self.hub_api_token.get_secret_value()
        path = self.hub_token_file
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            raise RuntimeError(
                f"no hub token: set BINDERY_HUB_API_TOKEN or run `bindery up` (expected {path})"
            ) from None


SERVER_NETWORKS = 2048  # /24s in 10.200.0.0/13


def derived_server_network(stack_id: str, step: int = 0) -> ipaddress.IPv4Network:
    """The servers' /24 a stack tries `step`-th: from its id on, so stacks rarely try the same."""
    n = (int(stack_id, 16) + step) % SERVER_NETWORKS
    return ipaddress.IPv4Network(f"10.{200 + n // 256}.{n % 256}.0/24")


def hub_address_in(network: ipaddress.IPv4Network) -> str:
    """The first address of the upper half (the lower half is the servers' bridge)."""
    return str(next(network.subnets(1)).broadcast_address + 2)


def stack_id_of(data_dir: Path) -> str:
    return hashlib.sha256(str(data_dir).encode()).hexdigest()[:10]
