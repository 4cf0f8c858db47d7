"""Parse and validate what a person asked for, before anything touches the network or a command.

Every check here exists because its input later reaches git (as an argument) or a URL: refs must
never look like options, URLs must use an allowed scheme and carry no credentials or control
characters. Bad input stops here with a LaunchError carrying status 400.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from bindery.events import LaunchError

MAX_REF_LENGTH = 255
MAX_URL_LENGTH = 2048
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# A conservative subset of git's ref syntax: no leading '-' or '.', no '..', no '@{', no control
# characters or spaces, no trailing '.lock', '/' or '.'.
_REF_CHARS = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./+=@-]*$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$|^[0-9a-f:.]+$")  # urlsplit lowercases
_PATH = re.compile(r"^[A-Za-z0-9_./~%+@-]*$")


def validate_ref(ref: str) -> str:
    if not ref:
        raise LaunchError("A ref (branch, tag or commit) is required.", 400)
    if len(ref) > MAX_REF_LENGTH:
        raise LaunchError(f"The ref is longer than {MAX_REF_LENGTH} characters.", 400)
    if ref.startswith("-"):
        raise LaunchError(f"The ref {ref[:60]!r} looks like a command-line option.", 400)
    if (
        not _REF_CHARS.match(ref)
        or ".." in ref
        or "@{" in ref
        or "//" in ref
        or ref.endswith((".lock", "/", "."))
        or "/." in ref
    ):
        raise LaunchError(f"{ref[:60]!r} is not a valid git ref.", 400)
    return ref


def validate_repo_url(url: str, allowed_schemes: list[str]) -> str:
    """Return the URL if it is a plain network URL of an allowed scheme, else raise (400)."""
    if not url:
        raise LaunchError("A repository URL is required.", 400)
    if len(url) > MAX_URL_LENGTH:
        raise LaunchError(f"The repository URL is longer than {MAX_URL_LENGTH} characters.", 400)
    if "::" in url.split("/", 1)[0]:
        raise LaunchError("Git transport helpers (like ext::) are not allowed.", 400)
    if not url.isascii() or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise LaunchError(
            "The repository URL contains spaces, control or non-ASCII characters.", 400
        )
    if url.startswith("-"):
        raise LaunchError("The repository URL looks like a command-line option.", 400)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:
        raise LaunchError(f"The repository URL is malformed ({exc}).", 400) from None
    scheme = parts.scheme.lower()
    if scheme not in allowed_schemes:
        allowed = ", ".join(allowed_schemes)
        raise LaunchError(
            f"Repository URLs must use one of: {allowed} (got {scheme or 'no scheme'!r}).", 400
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise LaunchError("Repository URLs must not contain credentials.", 400)
    if not _HOST.match(host):
        raise LaunchError(f"{parts.netloc[:80]!r} is not a valid host.", 400)
    try:
        parts.port
    except ValueError:
        raise LaunchError("The repository URL has an invalid port.", 400) from None
    if parts.query or parts.fragment:
        raise LaunchError("Repository URLs must not have a query or fragment.", 400)
    if not _PATH.match(parts.path) or "/../" in parts.path + "/" or parts.path.startswith("/-"):
        raise LaunchError("The repository URL's path contains characters that are not allowed.", 400)
    return url
