"""Where build steps sit on the network, and what they may reach from there.

A repository's build steps (Dockerfile ``RUN``, buildpack installs, postBuild) are the most
hostile code a Binder runs. The build engine's Docker-API build runs them in the engine's own
(the host's) network namespace unless told otherwise, with raw sockets. Each embedded stack gets:

- a bridge network of its own on the *build* engine (``bindery-build-<stack id>``, interface
  ``bdb<stack id>``, the last quarter of the stack's /24 of ``server_network``: that /24 is
  claimed machine-wide by the hub's start, so no other stack uses it). Every build request names
  it (bindery/builds/step_sandbox.py), so each step gets a namespace of its own on it; repo2docker
  (the pusher) keeps the host's network, and the engine pushes from there;
- an nftables table ``inet bindery_build_<stack id>``: from the bridge, the host accepts nothing
  (not the registry, the hub, bindery, a git server, any address of this machine: local delivery
  is the input hook), and nothing is forwarded to ``server_blocked_networks`` (private, loopback,
  link-local, metadata, CGNAT ...) or over IPv6 (NAT64, 6to4, Teredo included) except the
  operator's ``build_allowed_networks`` and the host's DNS servers on port 53;
- a cgroup ``bindery-build-<stack id>`` whose pids limit (``build_pids_limit``) bounds the
  processes of every step; each build's steps run in a leaf of it.

``install`` runs with the hub's start (after the /24 is chosen) and ``remove`` with its stop.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import docker

from bindery import datadir
from bindery.engine_clients import docker_client
from bindery.settings import Settings
from bindery.stack.base_image import debian_mirror
from bindery.stack.process import StackError
from bindery.stack.server_network import TIMEOUT, apply_ruleset, drop_orphan_bridge, run_tool

CGROUP_ROOT = Path("/sys/fs/cgroup")


def network_name(settings: Settings) -> str:
    return f"bindery-build-{settings.stack_id}"


def interface(settings: Settings) -> str:
    return f"bdb{settings.stack_id}"  # 13 characters: Linux allows 15


def table(settings: Settings) -> str:
    return f"bindery_build_{settings.stack_id}"


def cgroup(settings: Settings) -> str:
    return f"bindery-build-{settings.stack_id}"


def bridge_network(settings: Settings) -> ipaddress.IPv4Network:
    """The last /26 of the stack's /24 (the servers have the lower half, the hub's address the
    start of the upper half)."""
    return list(datadir.server_network(settings).subnets(new_prefix=26))[-1]


def nameservers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The host's IPv4 DNS servers: build steps get a copy of its resolv.conf."""
    found = []
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                address = ipaddress.ip_address(parts[1])
            except ValueError:
                continue
            if address.version == 4 and not address.is_loopback:
                found.append(str(address))
    return found


def package_index_hosts(settings: Settings) -> list[str]:
    """The hosts mirror builds install from: the Python package index (and PyPI's file host when it
    is PyPI) and the Debian mirror the base image came from."""
    hosts = [urlsplit(settings.builds.pypi_index_url).hostname or ""]
    if hosts[0] == "pypi.org":
        hosts.append("files.pythonhosted.org")
    try:
        hosts.append(urlsplit(debian_mirror(settings)).hostname or "")
    except Exception:  # noqa: BLE001 - no mirror configured or found: nothing to allow for it
        pass
    return [h for h in hosts if h]


def package_index_networks(settings: Settings) -> list[str]:
    """Each address (IPv4, /32) the package index hosts resolve to now, when the rules are made:
    builds reach the operator's indexes and mirrors even where they resolve to a blocked range."""
    found: set[str] = set()
    for host in package_index_hosts(settings):
        try:
            found |= {f"{info[4][0]}/32" for info in socket.getaddrinfo(host, 443, socket.AF_INET)}
        except OSError:
            continue  # not resolvable now: builds that need it fail and say so
    return sorted(found)


def ruleset(settings: Settings, dns: list[str], indexes: list[str] | None = None) -> str:
    """The nftables table (as `nft -f` input) that confines the build steps' bridge."""
    iif = json.dumps(interface(settings))
    allowed = sorted({str(ipaddress.IPv4Network(n)) for n in
                      [*settings.builds.build_allowed_networks, *(indexes or [])]})
    blocked = [str(ipaddress.IPv4Network(n)) for n in settings.launches.server_blocked_networks]
    lines = [f"        iifname {iif} ct state established,related accept"]
    if allowed:
        lines.append(f"        iifname {iif} ip daddr {{ {', '.join(allowed)} }} accept")
    if dns:
        lines.append(f"        iifname {iif} ip daddr {{ {', '.join(dns)} }} "
                     "meta l4proto { tcp, udp } th dport 53 accept")
    if blocked:
        lines.append(f"        iifname {iif} ip daddr {{ {', '.join(blocked)} }} counter reject")
    lines.append(f"        iifname {iif} meta nfproto ipv6 counter reject")
    return (
        f"table inet {table(settings)} {{\n"
        "    chain input {\n"
        "        type filter hook input priority filter - 10; policy accept;\n"
        f"        iifname {iif} ct state established,related accept\n"
        f"        iifname {iif} counter reject\n"
        "    }\n"
        "    chain forward {\n"
        "        type filter hook forward priority filter - 10; policy accept;\n"
        + "\n".join(lines) + "\n"
        "    }\n"
        "}\n"
    )


def _has_table(settings: Settings) -> bool:
    return run_tool(["nft", "list", "table", "inet", table(settings)], check=False).returncode == 0


def _pids_dirs(settings: Settings) -> list[Path]:
    """The stack's build cgroup in the pids hierarchy (cgroup v1) or the unified one (v2)."""
    v1 = CGROUP_ROOT / "pids"
    return [(v1 if v1.is_dir() else CGROUP_ROOT) / cgroup(settings)]


def install(settings: Settings, log: Callable[[str], None] = print) -> None:
    """The build steps' network, its egress rules and their cgroup (each only if missing)."""
    script = ((f"delete table inet {table(settings)}\n" if _has_table(settings) else "")
              + ruleset(settings, nameservers(), package_index_networks(settings)))
    apply_ruleset(script)
    for folder in _pids_dirs(settings):
        try:
            folder.mkdir(exist_ok=True)
            (folder / "pids.max").write_text(f"{settings.builds.build_pids_limit}\n")
        except OSError as exc:
            raise StackError(f"could not limit the build steps' processes ({folder}): {exc}")
    client = docker_client(settings.build_socket, TIMEOUT)
    subnet = bridge_network(settings)
    try:
        for stale in client.networks.list(names=[network_name(settings)]):
            subnets = [c.get("Subnet") for c in (stale.attrs.get("IPAM") or {}).get("Config") or []]
            if subnets != [str(subnet)]:
                stale.remove()
        if not client.networks.list(names=[network_name(settings)]):
            drop_orphan_bridge(interface(settings))
            pool = docker.types.IPAMPool(subnet=str(subnet), gateway=str(subnet.network_address + 1))
            client.networks.create(
                network_name(settings), driver="bridge",
                ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                options={"com.docker.network.bridge.name": interface(settings)})
    except docker.errors.DockerException as exc:
        raise StackError(f"could not create the build steps' network {network_name(settings)}: {exc}")
    finally:
        client.close()
    log(f"  build steps' network {network_name(settings)} ({subnet}), egress rules in table inet "
        f"{table(settings)}, at most {settings.builds.build_pids_limit} processes")


def remove(settings: Settings, log: Callable[[str], None] = print) -> None:
    """Undo `install` (whatever of it exists); never raises."""
    try:
        client = docker_client(settings.build_socket, TIMEOUT)
        try:
            for network in client.networks.list(names=[network_name(settings)]):
                network.remove()
        finally:
            client.close()
    except Exception as exc:
        log(f"  build steps' network {network_name(settings)} left in place: {exc}")
    try:
        if _has_table(settings):
            run_tool(["nft", "delete", "table", "inet", table(settings)])
    except (StackError, OSError) as exc:
        log(f"  could not remove the build steps' egress rules: {exc}")
    for folder in _pids_dirs(settings):
        try:
            for leaf in folder.iterdir():
                if leaf.is_dir():
                    leaf.rmdir()
            folder.rmdir()
        except OSError:
            pass  # a step still running, or never made
