"""Who a client is, for the limits that count per client: rate limits, open launches, connections
and build slots.

An IPv4 client is its address. An IPv6 client is its /64: one subscriber or host is routinely given
a whole /64 (SLAAC, privacy addresses), so keying on the full address would hand one person 2^64
identities. An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``, what a dual-stack socket reports for
an IPv4 peer) is the IPv4 client it wraps.
"""

from __future__ import annotations

import ipaddress

IPV6_CLIENT_PREFIX = 64


def client_key(address: str) -> str:
    """The key one client's limits are counted under; text that is not an address is its own key
    (a peer without an address, e.g. a Unix socket)."""
    try:
        parsed = ipaddress.ip_address(address.strip().split("%", 1)[0])  # no zone index
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False))
    return str(parsed)
