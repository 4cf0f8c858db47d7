"""Pre-built images (BinderHub #1298): launch an image that already exists, without building.

Spec: the image reference, plain or url-escaped (``image/registry.example.org/team/env:2024``). Only
references under one of the operator's ``prebuilt_registries`` prefixes are accepted; the image must
exist in its registry (checked over the OCI distribution API, so a typo is a clear 404, not a failed
spawn). The launch then goes through the same quotas, limits and events as any other.
"""

from __future__ import annotations

import re
from typing import ClassVar
from urllib.parse import unquote

from bindery.events import LaunchError
from bindery.providers.base import RepoProvider
from bindery.registry_client import Registry
from bindery.settings import Settings

# host[:port]/path[:tag] with the OCI distribution spec's path components; no digests in the tag.
_REFERENCE = re.compile(
    r"^(?P<host>[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?)"
    r"/(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?$")


class ImageProvider(RepoProvider):
    name = "image"
    label = "Pre-built image"
    spec_example = "registry.example.org/team/environment:2024"
    repo_label = "Image reference"
    placeholder = "registry.example.org/team/environment:tag"
    repo_parts: ClassVar[int | None] = None

    def __init__(self, settings: Settings, spec: str) -> None:  # noqa: D107 - not a git URL
        reference = unquote(spec).strip("/")
        match = _REFERENCE.match(reference)
        if not match:
            raise LaunchError(f"{reference[:120]!r} is not an image reference like "
                              f"{self.spec_example!r}.", 400)
        if not match.group("tag"):
            reference += ":latest"
        allowed = [p for p in settings.providers.prebuilt_registries if p]
        if not allowed:
            raise LaunchError("This service does not launch pre-built images.", 404)
        if not any(reference.startswith(p) for p in allowed):
            raise LaunchError(f"This service launches pre-built images only from "
                              f"{', '.join(allowed)}; {reference} is not there.", 403)
        self.settings = settings
        self.spec = spec
        self.repo_url = reference
        self.unresolved_ref = match.group("tag") or "latest"
        self.commit: str | None = None
        self.prebuilt_image = reference
        self.host = match.group("host")

    def parse(self, spec: str) -> tuple[str, str]:
        return self.repo_url, self.unresolved_ref

    @property
    def slug(self) -> str:
        return f"image-{self.repo_url}"

    def registry_api(self) -> str:
        """The registry's HTTP API: bindery's own by its configured URL, others over HTTPS."""
        if self.host == self.settings.registry.host:
            return self.settings.registry.url
        return f"https://{self.host}"

    async def check_outbound(self) -> None:
        """Nothing to check: only registries the operator allowed (prebuilt_registries) are asked."""

    async def resolve(self) -> str:
        registry = Registry(self.registry_api(), self.settings.registry.registry_timeout,
                            self.settings.registry.registry_retries)
        try:
            exists = await registry.image_exists(self.prebuilt_image or "")
        finally:
            await registry.aclose()
        if not exists:
            raise LaunchError(f"The image {self.repo_url} does not exist in its registry.", 404)
        self.commit = self.unresolved_ref
        return self.commit

    def persistent_spec(self) -> str:
        return self.spec
