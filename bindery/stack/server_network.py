"""Where launched servers sit on the network, and what they may reach from there.

Launched servers run untrusted code. Each embedded hub gets:

- a bridge network of its own on the run engine (``bindery-<stack id>``, interface
  ``bdy<stack id>``, the lower half of ``datadir.server_network(settings)``), so rules can name its traffic;
- the hub's address (``datadir.hub_address(settings)``, in the upper half) on the loopback interface: the
  hub's API listens only there (reachable from the host and, through the bridge's gateway, from the
  servers) instead of on every interface. podman's bridge exists only while a container runs, so
  the hub cannot bind the gateway's address itself;
- an nftables table ``inet bindery_<stack id>`` (its own table: rules of netavark, the operator or
  other stacks are never touched): from the bridge, the host accepts only the hub's API and DNS on
  the gateway (so not the registry, the proxy's API, bindery, or anything else listening on the
  host), and nothing is forwarded to ``settings.launches.server_blocked_networks`` (private, loopback,
  link-local incl. 169.254.169.254, CGNAT, multicast ...) or over IPv6. A drop in any table is
  final in nftables, so netavark's accept rules cannot undo these.

``install`` and ``remove`` are idempotent; ``remove`` leaves nothing behind. Both run with the hub
(bindery/stack/jupyterhub.py ``start``/``stop``), so `bindery up`/`down` install and remove them.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import docker

from bindery import datadir, process_runner
from bindery.engine_clients import docker_client
from bindery.datadir import SERVER_NETWORKS, derived_server_network, hub_address_in
from bindery.settings import Settings
from bindery.datadir import write_if_changed
from bindery.stack.process import StackError

TIMEOUT = 30.0  # seconds for one ip/nft/engine call
# Machine-wide, like the addresses it guards (any data_dir, any user of this machine's root).
LOCK_FILE = Path(tempfile.gettempdir()) / "bindery-server-networks.lock"


def network_name(settings: Settings) -> str:
    return f"bindery-{settings.stack_id}"


def interface(settings: Settings) -> str:
    return f"bdy{settings.stack_id}"  # 13 characters: Linux allows 15


def table(settings: Settings) -> str:
    return f"bindery_{settings.stack_id}"


def bridge_network(settings: Settings) -> ipaddress.IPv4Network:
    return next(datadir.server_network(settings).subnets(1))


def gateway(settings: Settings) -> str:
    return str(bridge_network(settings).network_address + 1)


def ruleset(settings: Settings) -> str:
    """The nftables table (as `nft -f` input) that confines the servers' bridge."""
    iif = json.dumps(interface(settings))
    blocked = ", ".join(str(ipaddress.IPv4Network(n)) for n in settings.launches.server_blocked_networks)
    forward_block = (f'        iifname {iif} ip daddr {{ {blocked} }} counter reject\n'
                     if blocked else "")
    return (
        f"table inet {table(settings)} {{\n"
        "    chain input {\n"
        "        type filter hook input priority filter - 10; policy accept;\n"
        f"        iifname {iif} ct state established,related accept\n"
        f"        iifname {iif} ip daddr {datadir.hub_address(settings)} tcp dport {settings.stack.hub_port} accept\n"
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


def run_tool(argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    tool = shutil.which(argv[0])
    if tool is None:
        raise StackError(f"`{argv[0]}` is not installed: launched servers cannot be confined "
                         "(scripts/install.sh installs it)")
    res = process_runner.run([tool, *argv[1:]], timeout=TIMEOUT)
    if check and res.returncode != 0:
        raise StackError(f"`{' '.join(argv)}` failed: {res.stderr.strip()}")
    return res


def _has_table(settings: Settings) -> bool:
    return run_tool(["nft", "list", "table", "inet", table(settings)], check=False).returncode == 0


def has_address(settings: Settings) -> bool:
    """True while the hub's address is on the loopback interface."""
    return any(a["local"] == datadir.hub_address(settings) for a in host_addresses() if a["ifname"] == "lo")


def address_label(settings: Settings) -> str:
    """The label the hub's address carries on `lo`: which stack's it is (15 characters at most)."""
    return f"lo:{settings.stack_id}"


def host_addresses() -> list[dict]:
    """Every IPv4 address of this machine: ifname, local, label and its network."""
    res = run_tool(["ip", "-j", "-4", "addr", "show"])
    return [{"ifname": link.get("ifname", ""), "local": a["local"], "label": a.get("label", ""),
             "network": ipaddress.IPv4Interface(f"{a['local']}/{a.get('prefixlen', 32)}").network}
            for link in json.loads(res.stdout or "[]") for a in link.get("addr_info", [])]


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    """One stack at a time chooses its /24 and claims it (two `bindery up` at once pick two)."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # held for one `ip` call or two: never long
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _existing_network(settings: Settings) -> ipaddress.IPv4Network | None:
    """The /24 of this stack's servers' network if the engine already has it (an earlier start,
    perhaps by a bindery that recorded no choice and labelled no address)."""
    client = _engine(settings)
    try:
        for network in client.networks.list(names=[network_name(settings)]):
            for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
                return ipaddress.IPv4Network(config["Subnet"]).supernet(new_prefix=24)
    except (docker.errors.DockerException, KeyError, ValueError):
        return None
    finally:
        client.close()
    return None


def _choose(settings: Settings) -> ipaddress.IPv4Network:
    """A /24 for the servers that no other stack (its hub address on `lo` is in its /24) and no
    other network of this machine uses: the one recorded for this data_dir if still free, else
    the first free one from the data_dir's own first choice on. Recorded for the settings.

    This stack's own addresses do not count: its bridges (the servers' and, in the same /24, the
    build steps': up while a build runs, so a hub started again mid-build kept its /24), an address
    with its label, and the hub address of the network its engine already has (how an unlabelled
    address proves its owner)."""
    from bindery.stack import build_network  # it builds on this module

    mine = (interface(settings), build_network.interface(settings))
    label, existing = address_label(settings), _existing_network(settings)
    own_unlabelled = hub_address_in(existing) if existing is not None else None
    taken = [a["network"] for a in host_addresses()
             if a["ifname"] not in mine and a["label"] != label
             and not (a["ifname"] == "lo" and a["local"] == own_unlabelled)]
    recorded = datadir.server_network(settings)
    firsts = [recorded] + ([existing] if existing is not None else [])
    for step in range(-len(firsts), SERVER_NETWORKS):
        candidate = firsts[step] if step < 0 else derived_server_network(settings.stack_id, step)
        if not any(candidate.overlaps(net) for net in taken):
            write_if_changed(settings.server_subnet_file, f"{candidate}\n")
            return candidate
    raise StackError("every /24 of 10.200.0.0/13 is in use on this machine: set server_subnet")


def _engine(settings: Settings) -> docker.DockerClient:
    return docker_client(settings.run_socket, TIMEOUT)


def install(settings: Settings, log: Callable[[str], None] = print) -> None:
    """The servers' network, the hub's address and the egress rules (each only if missing)."""
    with _machine_lock():
        if not settings.launches.server_subnet:
            _choose(settings)
        if not has_address(settings):
            run_tool(["ip", "addr", "add", f"{datadir.hub_address(settings)}/32", "dev", "lo",
                  "label", address_label(settings)])
    # Replace the whole table in one transaction: a changed setting takes effect, and there is
    # never a moment without rules.
    script = ((f"delete table inet {table(settings)}\n" if _has_table(settings) else "")
              + ruleset(settings))
    apply_ruleset(script)
    client = _engine(settings)
    try:
        for stale in client.networks.list(names=[network_name(settings)]):
            subnets = [c.get("Subnet") for c in (stale.attrs.get("IPAM") or {}).get("Config") or []]
            if subnets != [str(bridge_network(settings))]:  # made for a /24 since given up
                stale.remove()
        if not client.networks.list(names=[network_name(settings)]):
            drop_orphan_bridge(interface(settings))
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
        f"{datadir.hub_address(settings)}:{settings.stack.hub_port}, egress rules in table inet {table(settings)}")


def drop_orphan_bridge(ifname: str) -> None:
    """Remove the bridge ``ifname`` when the engine that should own it has no network for it: a
    stack killed before `down` leaves its bridge (and its address) behind, and the engine, its
    network records gone with its store, would refuse the subnet as "already used on the host"."""
    if Path(f"/sys/class/net/{ifname}").exists():
        run_tool(["ip", "link", "delete", ifname], check=False)


def apply_ruleset(script: str) -> None:
    nft = shutil.which("nft")
    if nft is None:
        raise StackError("`nft` is not installed: launched servers cannot be confined "
                         "(scripts/install.sh installs nftables)")
    res = process_runner.run([nft, "-f", "-"], input=script, timeout=TIMEOUT)
    if res.returncode != 0:
        raise StackError(f"nft refused the egress rules: {res.stderr.strip()}")


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
            run_tool(["nft", "delete", "table", "inet", table(settings)])
        if has_address(settings):
            run_tool(["ip", "addr", "del", f"{datadir.hub_address(settings)}/32", "dev", "lo"])
    except (StackError, subprocess.SubprocessError, OSError) as exc:
        log(f"  could not remove the servers' egress rules: {exc}")
