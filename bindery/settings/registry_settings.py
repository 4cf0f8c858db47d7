"""The OCI registry built images are pushed to and launched from.

Each field is also read from ``BINDERY_<FIELD>`` (upper case); see bindery/settings/__init__.py.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr


class RegistrySettings(BaseModel):
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
    registry_username: str = Field(
        "", description="User of bindery's registry credential: bindery's registry client and its "
        "builds' pusher use it (HTTP basic auth, or the Docker registry token flow, whichever the "
        "registry asks for). Empty with the embedded registry: its pusher credential "
        "(<data_dir>/secrets/registry-pusher). Empty otherwise: no credential (anonymous).")
    registry_password: SecretStr | None = Field(
        None, description="Password (or token) of registry_username. Empty: read from "
        "registry_password_file.")
    registry_password_file: Path | None = Field(
        None, description="File holding the password of registry_username (a mounted secret).")
    registry_token_port: int = Field(
        0, description="Port (127.0.0.1) of the embedded registry's token issuer (0: a free one, "
        "chosen at its first start and kept; clients learn it from the registry's answers): anyone gets "
        "pull tokens, only the pusher credential gets push tokens, so run engines pull read-only "
        "and repository code, which never holds the credential, cannot write an image.")
    registry_bytes: int = Field(
        0, ge=0, description="Bytes the embedded registry's storage may take. Above "
        "store_high_ratio of it, images are deleted from the registry, least recently launched "
        "first, until under store_low_ratio (never the base image, a warm pool's image, an image "
        "a server or a build uses, or one launched within store_clean_grace_seconds), and their "
        "blobs reclaimed with the registry's garbage collector. 0: three tenths of the data "
        "folder's disk.")
    registry_gc_timeout: float = Field(
        300.0, gt=0, description="Seconds the registry's garbage collector may run. The registry "
        "is read-only while it runs: launches of built images go on, a launch that needs a build "
        "waits for the end (this long at most, then fails saying why).")

    registry_mirrors: dict[str, str] = Field(
        default_factory=dict,
        description="Registries whose images (a Dockerfile's FROM) are pulled through a site's "
        "pull-through cache instead, e.g. {\"docker.io\": \"cache.example.org:5000\"} (JSON "
        "object: registry -> host[:port][/path] of its mirror; http:// for a mirror without TLS). "
        "Written into the build and run engines' registries.conf; a failed pull names the "
        "registry and the mirror it tried.")

    @property
    def url(self) -> str:
        """The registry's HTTP API base (no trailing slash)."""
        return (self.registry_url or f"http://127.0.0.1:{self.registry_port}").rstrip("/")

    @property
    def host(self) -> str:
        """host:port as it appears in image names."""
        return self.url.split("://", 1)[-1]
