"""The outbound policy: may bindery connect to this address on behalf of a person's request?

A repository URL is user input, so without a rule anyone could make bindery (and the builds it runs)
connect to the operator's private network: the hub's API, cloud metadata at 169.254.169.254, a
database on 10.x. The rule: a repository's host must resolve only to global (public) addresses, or
to addresses inside ``repo_allowed_networks``. It is checked BEFORE any connection is made, so the
answer never depends on whether something listens there (no port scanner).

The address that was checked is the one git connects to: ``Pin.git_config()`` gives git config
entries (``http.curloptResolve`` for http(s), an ``insteadOf`` rewrite to the address for git://)
that git and the build's git inherit, so a DNS answer that changes between check and clone
(rebinding) changes nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from bindery.events import LaunchError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_PORTS = {"http": 80, "https": 443, "git": 9418}

BLOCKED_MESSAGE = (
    "The repository's host {host} is on a private, local or otherwise non-public network, which "
    "this service does not connect to. Use a repository on a public server."
)


def networks(cidrs: Sequence[str]) -> list[Network]:
    # strict=False: '10.1.2.3/8' means the network containing it, as people write it.
    return [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip()]


# IPv6 ranges that carry an IPv4 address inside (a translator or relay connects to it on the
# sender's behalf), so "global" by Python's tables yet able to reach 127.0.0.1 or 10.x through a
# NAT64 gateway or a 6to4/Teredo relay: never public, only reachable when allowed explicitly.
TUNNELS = [ipaddress.ip_network(n) for n in (
    "64:ff9b::/96",  # NAT64, well-known prefix (RFC 6052)
    "64:ff9b:1::/48",  # NAT64, local-use prefix (RFC 8215)
    "2002::/16",  # 6to4 (RFC 3056)
    "2001::/32",  # Teredo (RFC 4380)
)]


def is_public(address: Address) -> bool:
    """Global unicast: not loopback, private, link-local, unique-local, shared, reserved, multicast,
    nor an IPv4 address wrapped in NAT64, 6to4 or Teredo."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        elif any(address in net for net in TUNNELS):
            return False
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Pin:
    """A repository URL's host and port, and the checked address git must connect to."""

    scheme: str
    netloc: str  # as written in the URL (the prefix git's insteadOf matches)
    host: str
    port: int
    address: Address | None  # None: the host is an address literal, nothing to pin

    def git_config(self) -> list[tuple[str, str]]:
        if self.address is None:
            return []
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        if self.scheme in ("http", "https"):
            return [("http.curloptResolve", f"{self.host}:{self.port}:{literal}")]
        # git:// has no resolve option: rewrite the URL itself to the address.
        return [(f"url.git://{literal}:{self.port}/.insteadOf", f"git://{self.netloc}/")]


class OutboundPolicy:
    def __init__(self, allowed_networks: Sequence[str], timeout: float) -> None:
        self.allowed = networks(allowed_networks)
        self.timeout = timeout

    def allows(self, address: Address) -> bool:
        return is_public(address) or any(address in net for net in self.allowed)

    async def check_url(self, url: str) -> Pin:
        """The pin for a repository URL, or LaunchError (403 blocked, 404 unknown host)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        port = parts.port or DEFAULT_PORTS.get(scheme, 0)
        try:
            literal: Address | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            addresses = await self._resolve(host, port)
        if not all(self.allows(a) for a in addresses):
            raise LaunchError(BLOCKED_MESSAGE.format(host=host), 403)
        return Pin(scheme, parts.netloc, host, port, None if literal is not None else addresses[0])

    async def _resolve(self, host: str, port: int) -> list[Address]:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), self.timeout)
        except TimeoutError:
            raise LaunchError(f"The repository's host {host} could not be looked up within "
                              f"{self.timeout:.0f} s.", 504) from None
        except OSError:
            raise LaunchError(f"The repository's host {host} does not exist (its name does not "
                              "resolve). Check the repository URL.", 404) from None
        addresses: list[Address] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise LaunchError(f"The repository's host {host} has no address.", 404)
        return addresses
