"""The outbound policy's rule and pins, and the git process cap, with real sockets and real git."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from bindery.events import LaunchError
from bindery.git_commands import GIT_SLOTS, ls_remote
from bindery.outbound import OutboundPolicy, is_public


@pytest.mark.parametrize("address,public", [
    ("127.0.0.1", False), ("127.0.0.2", False), ("10.1.2.3", False), ("172.16.0.1", False),
    ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False),
    ("224.0.0.1", False), ("255.255.255.255", False), ("::1", False), ("fd00::1", False),
    ("fe80::1", False), ("ff02::1", False), ("ff0e::1", False), ("::ffff:127.0.0.1", False),
    ("::ffff:10.0.0.1", False), ("::", False),
    # IPv4 inside IPv6: NAT64 (well-known and local-use), 6to4, Teredo
    ("64:ff9b::7f00:1", False), ("64:ff9b::808:808", False), ("64:ff9b:1::a00:1", False),
    ("2002:7f00:1::1", False), ("2002:808:808::1", False),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),
    ("93.184.215.14", True), ("8.8.8.8", True), ("2606:4700::1111", True),
])
def test_only_global_unicast_is_public(address: str, public: bool):
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize("url", [
    "http://127.0.0.2/x", "https://169.254.169.254/latest/meta-data", "git://10.0.0.1/x",
    "http://[::1]:8081/hub/api", "http://[fd00::1]/x", "http://localhost:8081/hub/api",
    "git://0.0.0.0/x",
])
async def test_private_hosts_are_refused_with_one_message(url: str):
    with pytest.raises(LaunchError) as info:
        await OutboundPolicy([], timeout=5).check_url(url)
    assert info.value.status_code == 403
    assert "non-public network" in str(info.value) and ":8081" not in str(info.value)


async def test_allowed_networks_and_pins():
    policy = OutboundPolicy(["127.0.0.0/30"], timeout=5)
    literal = await policy.check_url("http://127.0.0.2:9/x")
    assert literal.address is None and literal.git_config() == []  # nothing to pin
    named = await policy.check_url("http://localhost:8080/x.git")
    assert named.git_config() == [("http.curloptResolve", "localhost:8080:127.0.0.1")]
    https = await policy.check_url("https://localhost/x")
    assert https.git_config() == [("http.curloptResolve", "localhost:443:127.0.0.1")]
    git = await policy.check_url("git://LocalHost/x")
    assert git.git_config() == [("url.git://127.0.0.1:9418/.insteadOf", "git://LocalHost/")]
    with pytest.raises(LaunchError):
        await policy.check_url("http://127.0.0.4/x")  # just outside the allowed /30


async def test_tunnelled_ipv4_is_refused_unless_its_range_is_allowed():
    for url in ("http://[64:ff9b::7f00:1]/x", "git://[2002:7f00:1::1]/x",
                "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x"):
        with pytest.raises(LaunchError) as info:
            await OutboundPolicy([], timeout=5).check_url(url)
        assert info.value.status_code == 403
    allowed = OutboundPolicy(["64:ff9b::/96"], timeout=5)
    assert (await allowed.check_url("http://[64:ff9b::808:808]/x")).address is None


async def test_unknown_host_is_a_clear_404():
    with pytest.raises(LaunchError) as info:
        await OutboundPolicy([], timeout=5).check_url("https://no-such-host.invalid/x")
    assert info.value.status_code == 404 and "does not resolve" in str(info.value)


async def test_git_processes_are_capped(unused_tcp_port: int):
    """Six ls-remotes against a server that never answers: only `limit` git processes connect."""
    open_now, most, total = 0, 0, 0

    async def tarpit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, most, total
        open_now += 1
        total += 1
        most = max(most, open_now)
        await reader.read()  # until git goes away (killed at its timeout)
        open_now -= 1
        writer.close()

    server = await asyncio.start_server(tarpit, "127.0.0.1", unused_tcp_port)
    previous = GIT_SLOTS.limit
    GIT_SLOTS.configure(2)
    try:
        url = f"git://127.0.0.1:{unused_tcp_port}/x"
        results = await asyncio.gather(*(ls_remote(url, "main", timeout=3) for _ in range(6)),
                                       return_exceptions=True)
        assert all(isinstance(r, LaunchError) and r.status_code == 504 for r in results)
        assert most == 2 and total >= 2
    finally:
        GIT_SLOTS.configure(previous)
        server.close()
