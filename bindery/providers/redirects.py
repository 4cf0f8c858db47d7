"""Where a moved git repository lives now: its redirects followed one checked hop at a time.

A renamed or transferred repository (GitHub keeps the old name as a redirect) is what old Binder
links in papers point at. git itself runs with redirects off (bindery/git_commands.py): curl would follow a
``Location`` to any address, the operator's private network included, after the outbound policy
checked only the first host. So bindery follows them itself, the way git's own
``http.followRedirects=initial`` does, with the policy in between:

- ask the repository's ref advertisement (``<url>/info/refs?service=git-upload-pack``), connecting
  to the address the policy checked, and read the answer's status and ``Location`` only;
- a redirect must keep that path's tail (the rest is the repository's new URL), stay on http(s) and
  never go from https to http; its host is checked before anything connects to it;
- at most :data:`MAX_HOPS` hops, each bounded by the settings' git timeout.

The result is git config (bindery/git_commands.py passes it to every git, the build's included): the final
host's pinned address and ``url.<new>.insteadOf=<old>``, so the person's URL stays the repository's
name (its image, its quota, its links) while git fetches from where it lives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from bindery import http_clients
from bindery._version import __version__
from bindery.events import LaunchError
from bindery.git_commands import GitConfig
from bindery.outbound import BLOCKED_MESSAGE, OutboundPolicy, Pin
from bindery.spec import validate_repo_url

MAX_HOPS = 5
ADVERTISEMENT = "/info/refs?service=git-upload-pack"
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Moved:
    """A repository found at another URL: the git config that sends git there."""

    url: str  # where the person's URL led
    git_config: GitConfig


def next_url(repo_url: str, status: int, location: str | None) -> str | None:
    """The repository URL an answer to its ref advertisement points to, or None (not a redirect).

    LaunchError (404) for a redirect git would not follow either: elsewhere than a repository, to
    another scheme, or from https down to http."""
    if status not in REDIRECT_STATUSES:
        return None
    if not location:
        raise LaunchError(f"The repository {repo_url} answered with a redirect to nowhere "
                          f"(HTTP {status} without a Location).", 404)
    target = urljoin(repo_url.rstrip("/") + ADVERTISEMENT, location.strip())
    old_scheme, new_scheme = urlsplit(repo_url).scheme.lower(), urlsplit(target).scheme.lower()
    if new_scheme not in ("http", "https") or (old_scheme == "https" and new_scheme == "http"):
        raise LaunchError(f"The repository {repo_url} redirects to {target[:200]}, which this "
                          "service does not follow (only http(s), never from https to http).", 404)
    if not target.endswith(ADVERTISEMENT):
        raise LaunchError(f"The repository {repo_url} redirects to {target[:200]}, which is not a "
                          "git repository's address.", 404)
    return target.removesuffix(ADVERTISEMENT)


def pinned_request(url: str, pin: Pin) -> tuple[str, dict[str, str], dict[str, str]]:
    """URL, headers and httpx extensions that reach the pinned address under the URL's name."""
    if pin.address is None:  # an address literal: nothing was resolved, nothing to pin
        return url, {}, {}
    parts = urlsplit(url)
    literal = f"[{pin.address}]" if pin.address.version == 6 else str(pin.address)
    pinned = parts._replace(netloc=f"{literal}:{pin.port}").geturl()
    extensions = {"sni_hostname": pin.host} if pin.scheme == "https" else {}
    return pinned, {"Host": pin.netloc.rpartition("@")[2]}, extensions


async def _status_and_location(client: httpx.AsyncClient, url: str,
                               pin: Pin) -> tuple[int, str | None]:
    target, headers, extensions = pinned_request(url + ADVERTISEMENT, pin)
    try:
        # Streamed and closed after the headers: an advertisement can be large, only its head counts.
        async with client.stream("GET", target, headers=headers, extensions=extensions) as answer:
            return answer.status_code, answer.headers.get("location")
    except httpx.HTTPError as exc:
        raise LaunchError(f"Could not reach the repository {url} to follow its redirect: "
                          f"{type(exc).__name__}.", 404) from None


async def locate(repo_url: str, policy: OutboundPolicy, timeout: float,
                 schemes: Sequence[str]) -> Moved | None:
    """Follow the redirects of a repository at an http(s) URL; None if it answers where it is.
    Every URL on the way must be one a person could have asked for (`schemes`, no credentials)."""
    if urlsplit(repo_url).scheme.lower() not in ("http", "https"):
        return None  # git:// has no redirects
    url = repo_url
    async with http_clients.async_client(timeout=timeout,
                                         agent=f"git/2 (bindery/{__version__})") as client:
        for _ in range(MAX_HOPS + 1):
            try:
                pin = await policy.check_url(url)
            except LaunchError as exc:
                if url == repo_url or exc.status_code != 403:
                    raise
                host = urlsplit(url).hostname or url
                raise LaunchError(f"The repository {repo_url} redirects to {url[:200]}: "
                                  + BLOCKED_MESSAGE.format(host=host), 403) from None
            status, location = await _status_and_location(client, url, pin)
            moved_to = next_url(url, status, location)
            if moved_to is None:
                if url == repo_url:
                    return None
                config = (*pin.git_config(), (f"url.{url}.insteadOf", repo_url))
                return Moved(url, config)
            try:
                url = validate_repo_url(moved_to, schemes)
            except LaunchError as exc:
                raise LaunchError(f"The repository {repo_url} redirects to an address this service "
                                  f"does not use: {exc.message}", 404) from None
    raise LaunchError(f"The repository {repo_url} redirects more than {MAX_HOPS} times "
                      "(a loop?).", 404)
