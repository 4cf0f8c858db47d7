"""Deterministic, registry-safe image names from (repository, commit).

The name must be the same for every request of the same commit (so the registry answers "built")
and valid as an OCI repository path: lowercase components of ``[a-z0-9]`` joined by ``-``/``.``/``_``.
"""

from __future__ import annotations

import hashlib
import re
import string

import escapism

_SAFE = set(string.ascii_lowercase + string.digits)
MAX_SLUG = 60


def image_name(registry_host: str, prefix: str, slug: str, repo_url: str, commit: str) -> str:
    """`<registry>/<prefix><escaped-slug>-<hash8>:<commit>`."""
    # Separators become single dashes; anything else outside [a-z0-9] is escaped by escapism.
    words = [w for w in re.split(r"[-/._\s]+", slug.lower()) if w]
    escaped = "-".join(escapism.escape(w, safe=_SAFE, escape_char="-") for w in words).lower()
    escaped = escaped.strip("-")[:MAX_SLUG].rstrip("-") or "repo"
    digest = hashlib.sha256(repo_url.encode()).hexdigest()[:8]
    return f"{registry_host}/{prefix}{escaped}-{digest}:{commit}"


def split_image(image: str) -> tuple[str, str, str]:
    """(registry host, repository path, tag) of a full image name; for a digest reference
    (``host/repo@sha256:...``) the digest stands where the tag would (as the registry API and the
    engine's pull take it)."""
    host, _, rest = image.partition("/")
    if "@" in rest:
        repo, _, digest = rest.partition("@")
        return host, repo.partition(":")[0], digest  # a repository path has no ':'; a tag may precede
    repo, _, tag = rest.rpartition(":")
    return host, repo, tag
