"""The one HTTP-client factory: every httpx client bindery makes is made here, so its policy is stated once.

- **Timeout**: required (a number for every phase, or an ``httpx.Timeout`` built with :func:`bounds`), never
  httpx's silent default.
- **User-Agent**: ``bindery/<version>`` unless a caller has a reason to say otherwise (``agent``) (the redirect follower
  speaks as git, because git hosts answer git clients differently).
- **Proxies** (``proxy``): ``ENVIRONMENT`` honours the process's HTTP(S)_PROXY / NO_PROXY and CA variables,
  for addresses an operator may route through a proxy (providers, registries, mirrors, the hub, the service
  the CLI talks to); ``DIRECT`` never uses a proxy, for the stack's own parts that only make sense reached
  directly (a Docker engine on a socket, the deploy front and the checks of a freshly deployed instance).
- **Redirects**: not followed unless the caller says so (a redirect may point anywhere; bindery/providers/
  redirects.py follows repository moves itself, checking every hop).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import httpx

from bindery._version import get_version

ENVIRONMENT: Literal["environment"] = "environment"
DIRECT: Literal["direct"] = "direct"
Proxy = Literal["environment", "direct"]


def bounds(default: float | None, **phases: float | None) -> httpx.Timeout:
    """Timeouts per phase (connect, read, write, pool): ``default`` for each one not named (``read=None``: a
    stream that may stay quiet long, bounded by its own keepalives)."""
    return httpx.Timeout(default, **phases)


def user_agent() -> str:
    """``bindery/<version>`` (the version is read on first use, not at import: it may run git)."""
    return f"bindery/{get_version()}"


def _options(timeout: float | httpx.Timeout, proxy: Proxy, follow_redirects: bool, agent: str | None,
             headers: Mapping[str, str] | None, extra: dict[str, Any]) -> dict[str, Any]:
    if proxy not in (ENVIRONMENT, DIRECT):
        raise ValueError(f"proxy must be {ENVIRONMENT!r} or {DIRECT!r}, not {proxy!r}")
    options = {k: v for k, v in extra.items() if v is not None}
    return {
        "timeout": timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        "trust_env": proxy == ENVIRONMENT,
        "follow_redirects": follow_redirects,
        "headers": {"User-Agent": agent or user_agent(), **(headers or {})},
        **options,
    }


def async_client(
    *,
    timeout: float | httpx.Timeout,
    proxy: Proxy = ENVIRONMENT,
    follow_redirects: bool = False,
    agent: str | None = None,
    headers: Mapping[str, str] | None = None,
    base_url: str = "",
    verify: Any = None,
    limits: httpx.Limits | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An asynchronous client with bindery's policy (see the module's doc)."""
    return httpx.AsyncClient(base_url=base_url, **_options(
        timeout, proxy, follow_redirects, agent, headers,
        {"verify": verify, "limits": limits, "transport": transport}))


def client(
    *,
    timeout: float | httpx.Timeout,
    proxy: Proxy = ENVIRONMENT,
    follow_redirects: bool = False,
    agent: str | None = None,
    headers: Mapping[str, str] | None = None,
    base_url: str = "",
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """A synchronous client with bindery's policy (see the module's doc)."""
    return httpx.Client(base_url=base_url, **_options(
        timeout, proxy, follow_redirects, agent, headers, {"transport": transport}))
