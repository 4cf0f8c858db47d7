"""bindery's web service: where it listens, how people reach it, its replicas.

Each field is also read from ``BINDERY_<FIELD>`` (upper case); see bindery/settings/__init__.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ServiceSettings(BaseModel):
    shutdown_seconds: float = Field(
        10.0, description="Seconds a SIGTERMed web service takes to hand its launches over (release "
        "them, end their streams so clients reconnect elsewhere) before it exits.")
    host: str = Field("127.0.0.1", description="Address bindery's web service listens on.")
    port: int = Field(8585, description="Port bindery's web service listens on.")
    public_url: str = Field(
        "",
        description="URL people use to reach bindery (for binder_launch_host and badges). "
        "Empty: http://<host>:<port>/.",
    )
    cors_allow_origin: str = Field(
        "",
        description="Origin that pages elsewhere may use bindery and its launched servers from "
        "(BinderHub's cors_allow_origin), e.g. 'https://book.example.org', or '*' for any. Set: the "
        "event stream and the JSON endpoints answer it (preflight too), and launched servers accept "
        "it for REST and websockets (Jupyter's allow_origin), so live code in books (Thebe) runs "
        "here. Empty (the default): no cross-origin access, except /versions, which any page may "
        "read, as in BinderHub.")
    keepalive_seconds: float = Field(
        15.0, description="Seconds of silence on an event stream before a keepalive comment is sent."
    )
    replicas: int = Field(
        1, ge=1, le=32,
        description="bindery web processes `bindery up` runs. 1: one process on <host>:<port>. More: "
        "each on its own loopback port behind HAProxy at <host>:<port>, sharing state through the "
        "stack's Redis (see redis_port).")
    redis_port: int = Field(
        6390, description="Loopback port of the stack's Redis (started by `bindery up` when replicas > 1 "
        "and state_url is empty; password in <data_dir>/secrets/redis).")
    api_only: bool = Field(
        False, description="Run as a build service (BinderHub's api-only mode): only /build, "
        "/health, /versions and /metrics; every /build builds and pushes without launching; no hub "
        "needed. Needs build_token_secret or allowed_specs.")
    log_format: Literal["json", "text"] = Field(
        "json", description="How the web service writes its log: 'json', one JSON object a line (time, "
        "level, logger, message, and launch_id, repo, ref and phase on every line about a launch), or "
        "'text', the same fields as one readable line. Secrets are redacted in both.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least severe level the web service's log keeps.")
    metrics_repo_labels: int = Field(
        500, description="Repositories that get their own value of the `repo` metric label (the first "
        "ones to launch or build successfully); every other repository is counted as 'other', so "
        "/metrics stays bounded whatever people type.")

    @property
    def web_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}/"
