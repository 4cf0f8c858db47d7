"""bindery's version, exactly as `bindery version` derives it (see bindery/versioning.py).

In a checkout it comes from git; in an installed wheel from the build info baked in at build time. Computed on first
access and cached, so `/versions` and `--version` cost nothing after the first call.
"""

from __future__ import annotations

from functools import cache


@cache
def get_version() -> str:
    from bindery.versioning import package_version

    return package_version()


def __getattr__(name: str) -> str:
    # Lazy module attribute (PEP 562): importing bindery does not run git; reading __version__ does, once.
    if name == "__version__":
        return get_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
