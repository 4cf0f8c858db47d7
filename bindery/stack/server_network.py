"""Where launched servers sit on the network, and what they may reach from there.

Launched servers run untrusted code. Each embedded hub gets:

- a bridge network of its own on the run engine (``bindery-<stack id>``, interface
  ``bdy<stack id>``, the lower half of ``settings.server_network``), so rules can name its traffic;
- the hub's address (``settings.hub_address``, in the upper half) on the loopback interface: the
  hub's API listens only there (reachable from the host and, through the bridge's gateway, from the
  servers) instead of on every interface. podman's bridge exists only while a container runs, so
  the hub cannot bind the gateway's address itself;
- an nftables table ``inet bindery_<stack id>`` (its own table: rules of netavark, the operator or
  other stacks are never touched): from the bridge, the host accepts only the hub's API and DNS on
  the gateway (so not the registry, the proxy's API, bindery, or anything else listening on the
  host), and nothing is forwarded to ``settings.server_blocked_networks`` (private, loopback,
  link-local incl. 169.254.169.254, CGNAT, multicast ...) or over IPv6. A drop in any table is
  final in nftables, so netavark's accept rules cannot undo these.

``install`` and ``remove`` are idempotent; ``remove`` leaves nothing behind. Both run with the hub
(bindery/stack/hub.py ``start``/``stop``), so `bindery up`/`down` install and remove them.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from collections.abc import Callable

import docker

from bindery.engine import docker_client
from bindery.settings import Settings
from bindery.stack.process import StackError

TIMEOUT = 30.0  # seconds for one ip/nft/engine call


def network_name(settings: Settings) -> str:
    return f"bindery-{settings.stack_id}"


def interface(settings: Settings) -> str:
    return f"bdy{settings.stack_id}"  # 13 characters: Linux allows 15


def table(settings: Settings) -> str:
    return f"bindery_{settings.stack_id}"


def bridge_network(settings: Settings) -> ipaddress.IPv4Network:
    return next(settings.server_network.subnets(1))


def gateway(settings: Settings) -> str:
    return str(bridge_network(settings).network_address + 1)


def ruleset(settings: Settings) -> str:
    """The nftables table (as `nft -f` input) that confines the servers' bridge."""
    iif = json.dumps(interface(settings))
    blocked = ", ".join(str(ipaddress.IPv4Network(n)) for n in settings.server_blocked_networks)
    forward_block = (f'        iifname {iif} ip daddr {{ {blocked} }} counter reject\n'
                     if blocked else "")
    return (
        f"table inet {table(settings)} {{\n"
        "    chain input {\n"
        "        type filter hook input priority filter - 10; policy accept;\n"
        f"        iifname {iif} ct state established,related accept\n"
        f"        iifname {iif} ip daddr {settings.hub_address} tcp dport {settings.hub_port} accept\n"
        f"        iifname {iif} ip daddr {gateway(settings)} meta l4proto {{ tcp, udp }} "
        "th dport 53 accept\n"
        f"        iifname {iif} counter reject\n"
        "    }\n"
        "    chain forward {\n"
        "        type filter hook forward priority filter - 10; policy accept;\n"
        f"        iifname {iif} ct state established,related accept\n"
        f"{forward_block}"
        f"        iifname {iif} meta nfproto ipv6 counter reject\n"
        "    }\n"
        "}\n"
    )


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    tool = shutil.which(argv[0])
    if tool is None:
        raise StackError(f"`{argv[0]}` is not installed: launched servers cannot be confined "
                         "(scripts/install.sh installs it)")
    res = subprocess.run([tool, *argv[1:]], capture_output=True, text=True, timeout=TIMEOUT)
    if check and res.returncode != 0:
        raise StackError(f"`{' '.join(argv)}` failed: {res.stderr.strip()}")
    return res


def _has_table(settings: Settings) -> bool:
    return _run(["nft", "list", "table", "inet", table(settings)], check=False).returncode == 0


def has_address(settings: Settings) -> bool:
    """True while the hub's address is on the loopback interface."""
    res = _run(["ip", "-j", "-4", "addr", "show", "dev", "lo"])
    return any(a.get("local") == settings.hub_address
               for link in json.loads(res.stdout or "[]") for a in link.get("addr_info", []))


def _engine(settings: Settings) -> docker.DockerClient:
    return docker_client(settings.run_socket, TIMEOUT)


def install(settings: Settings, log: Callable[[str], None] = print) -> None:
    """The servers' network, the hub's address and the egress rules (each only if missing)."""
    if not has_address(settings):
        _run(["ip", "addr", "add", f"{settings.hub_address}/32", "dev", "lo"])
    # Replace the whole table in one transaction: a changed setting takes effect, and there is
    # never a moment without rules.
    script = ((f"delete table inet {table(settings)}\n" if _has_table(settings) else "")
              + ruleset(settings))
    _apply(script)
    client = _engine(settings)
    try:
        if not client.networks.list(names=[network_name(settings)]):
            pool = docker.types.IPAMPool(subnet=str(bridge_network(settings)),
                                         gateway=gateway(settings))
            client.networks.create(
                network_name(settings), driver="bridge",
                ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                options={"com.docker.network.bridge.name": interface(settings)})
    except docker.errors.DockerException as exc:
        raise StackError(f"could not create the servers' network {network_name(settings)}: {exc}")
    finally:
        client.close()
    log(f"  servers' network {network_name(settings)} ({bridge_network(settings)}), hub API at "
        f"{settings.hub_address}:{settings.hub_port}, egress rules in table inet {table(settings)}")


def _apply(script: str) -> None:
    nft = shutil.which("nft")
    if nft is None:
        raise StackError("`nft` is not installed: launched servers cannot be confined "
                         "(scripts/install.sh installs nftables)")
    res = subprocess.run([nft, "-f", "-"], input=script, text=True, capture_output=True,
                         timeout=TIMEOUT)
    if res.returncode != 0:
        raise StackError(f"nft refused the servers' egress rules: {res.stderr.strip()}")


def remove(settings: Settings, log: Callable[[str], None] = print) -> None:
    """Undo `install` (whatever of it exists); never raises."""
    try:
        client = _engine(settings)
        try:
            for network in client.networks.list(names=[network_name(settings)]):
                network.remove()
        finally:
            client.close()
    except Exception as exc:  # an engine that is gone or a network still in use: not fatal
        log(f"  servers' network {network_name(settings)} left in place: {exc}")
    try:
        if _has_table(settings):
            _run(["nft", "delete", "table", "inet", table(settings)])
        if has_address(settings):
            _run(["ip", "addr", "del", f"{settings.hub_address}/32", "dev", "lo"])
    except (StackError, subprocess.SubprocessError, OSError) as exc:
        log(f"  could not remove the servers' egress rules: {exc}")
