"""The one reader of the Python package index's simple API (PEP 691 JSON) in the buildpacks.

Used while a Dockerfile is rendered (in the build container, before any build step runs): does a
project exist, and which files does it publish. Bounded by a timeout; the host's CA store (a
re-signing proxy's CA too).
"""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request

from bindery.builds.buildpacks.errors import BuildpackError

TIMEOUT = 15.0


def normal(name: str) -> str:
    """A project name in PEP 503's normal form (how an index and uv compare names)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_files(index_url: str, name: str, timeout: float = TIMEOUT) -> list[dict] | None:
    """The files the index lists for project `name`, or None when it has no such project."""
    request = urllib.request.Request(f"{index_url.rstrip('/')}/{normal(name)}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout,
                                    context=ssl.create_default_context()) as response:
            data = json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise BuildpackError(f"the package index {index_url} answered HTTP {exc.code} for "
                             f"{name}; please try again later") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise BuildpackError(f"the package index {index_url} did not answer ({exc}); "
                             "please try again later") from None
    files = data.get("files") if isinstance(data, dict) else None
    return [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
