"""Where each part of the embedded stack keeps its files, all below ``settings.data_dir``.

    data_dir/
      conf/      generated configs (containers.conf, storage-*.conf, registries.conf, registry.yml,
                 jupyterhub_config.py)
      stores/    podman image stores: build/{root,runroot,tmp}, run/{root,runroot,tmp}
      run/       sockets (settings.sockets_dir) and pid files
      logs/      one log file per background process
      cache/     the service's own caches: fetched DOI records, treeless clones for abbreviated SHAs
      registry/  the registry's blobs
      redis/     the shared state store's data (only with several web replicas)
      hub/       hub database, cookie secret, proxy auth token
      secrets/   tokens of the hub services (mode 600)
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # settings import this module (the layout is below them)
    from bindery.settings import Settings

SIDES = ("build", "run")


@dataclass(frozen=True)
class StackPaths:
    data_dir: Path

    @classmethod
    def of(cls, settings: "Settings") -> "StackPaths":
        return cls(Path(settings.data_dir).expanduser().absolute())

    @property
    def conf(self) -> Path:
        return self.data_dir / "conf"

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def pids(self) -> Path:
        return self.data_dir / "run"

    @property
    def work_cache(self) -> Path:
        return self.data_dir / "cache"

    @property
    def registry_data(self) -> Path:
        return self.data_dir / "registry"

    @property
    def redis_data(self) -> Path:
        return self.data_dir / "redis"

    @property
    def hub(self) -> Path:
        return self.data_dir / "hub"

    @property
    def secrets(self) -> Path:
        return self.data_dir / "secrets"

    def store(self, side: str) -> Path:
        assert side in SIDES, side
        return self.data_dir / "stores" / side

    def runroot(self, side: str) -> Path:
        """podman's runroot: must be shorter than 50 characters, so not under a deep data_dir."""
        return Path(tempfile.gettempdir()) / f"bindery-{self.stack_id}-{side}"

    def short_socket(self, name: str) -> Path:
        """A unix socket of this stack: socket paths are limited to ~100 bytes, so not under a deep data_dir."""
        return Path(tempfile.gettempdir()) / f"bindery-{self.stack_id}-{name}.sock"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    @property
    def stack_id(self) -> str:
        """Short id of this stack (from its data_dir): labels its containers, names its network."""
        return stack_id_of(self.data_dir)

    def make(self) -> None:
        for d in (self.conf, self.logs, self.pids, self.registry_data, self.hub):
            d.mkdir(parents=True, exist_ok=True)
        self.secrets.mkdir(parents=True, exist_ok=True)
        os.chmod(self.secrets, 0o700)


def disk_size(path: Path) -> int:
    """Bytes of the file system holding ``path`` (its nearest existing folder): what budgets left
    at 0 in the settings are shares of."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).total


def write_if_changed(path: Path, text: str, mode: int | None = None) -> bool:
    """Write ``text`` to ``path`` unless it already holds it. Returns True when written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.read_text() == text:
            if mode is not None:
                os.chmod(path, mode)
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def secret_file(path: Path, nbytes: int = 32) -> str:
    """Read a secret from ``path``, creating it (mode 600) with a random hex value if missing."""
    try:
        value = path.read_text().strip()
        if value:
            os.chmod(path, 0o600)
            return value
    except FileNotFoundError:
        pass
    value = secrets.token_hex(nbytes)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return value


def stack_id_of(data_dir: Path) -> str:
    return hashlib.sha256(str(data_dir).encode()).hexdigest()[:10]


# -- what the data folder records: read here, never by the settings ------------------------------
SERVER_NETWORKS = 2048  # /24s in 10.200.0.0/13


def derived_server_network(stack_id: str, step: int = 0) -> ipaddress.IPv4Network:
    """The servers' /24 a stack tries `step`-th: from its id on, so stacks rarely try the same."""
    n = (int(stack_id, 16) + step) % SERVER_NETWORKS
    return ipaddress.IPv4Network(f"10.{200 + n // 256}.{n % 256}.0/24")


def hub_address_in(network: ipaddress.IPv4Network) -> str:
    """The first address of the upper half (the lower half is the servers' bridge)."""
    return str(next(network.subnets(1)).broadcast_address + 2)


def server_network(settings: "Settings") -> ipaddress.IPv4Network:
    """server_subnet; else the /24 the stack's hub chose when it started (one no other stack on
    this machine used, bindery/stack/server_network.py); else the data_dir's first choice."""
    if settings.launches.server_subnet:
        return ipaddress.IPv4Network(settings.launches.server_subnet)
    try:
        return ipaddress.IPv4Network(settings.server_subnet_file.read_text().strip())
    except (OSError, ValueError):
        return derived_server_network(settings.stack_id)


def hub_address(settings: "Settings") -> str:
    """Where the embedded hub's API listens: reachable from the host and the servers' bridge."""
    return hub_address_in(server_network(settings))


def hub_api(settings: "Settings") -> str:
    """The hub's REST API URL (no trailing slash)."""
    url = settings.launches.hub_api_url or f"http://{hub_address(settings)}:{settings.stack.hub_port}/hub/api"
    return url.rstrip("/")


def hub_token(settings: "Settings") -> str:
    """The bindery service's hub token: hub_api_token, else the file `bindery up` wrote."""
    if settings.launches.hub_api_token is not None:
        return settings.launches.hub_api_token.get_secret_value()
    path = settings.hub_token_file
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise RuntimeError(
            f"no hub token: set BINDERY_HUB_API_TOKEN or run `bindery up` (expected {path})"
        ) from None


PUSHER = "pusher"  # user name of the embedded registry's pusher credential


def embedded_registry(settings: "Settings") -> bool:
    """The stack runs the registry unless ``registry_url`` points elsewhere."""
    port = settings.registry.registry_port
    return not settings.registry.registry_url or settings.registry.host in (
        f"127.0.0.1:{port}", f"localhost:{port}")


def pusher_secret_file(settings: "Settings") -> Path:
    """Where `bindery up` keeps the embedded registry's pusher password (mode 600)."""
    return StackPaths.of(settings).secrets / "registry-pusher"


def registry_credential(settings: "Settings") -> tuple[str, str] | None:
    """(user, password) bindery and its builds' pusher present to the registry, or None.

    The settings' credential when given (password inline or from its file); else, for the
    embedded registry, its pusher credential; else none (anonymous)."""
    registry = settings.registry
    if registry.registry_username:
        if registry.registry_password is not None:
            return registry.registry_username, registry.registry_password.get_secret_value()
        if registry.registry_password_file is not None:
            return registry.registry_username, registry.registry_password_file.read_text().strip()
        raise RuntimeError("registry_username is set but neither registry_password nor "
                           "registry_password_file is")
    if embedded_registry(settings):
        try:
            return PUSHER, pusher_secret_file(settings).read_text().strip()
        except FileNotFoundError:
            return None
    return None
