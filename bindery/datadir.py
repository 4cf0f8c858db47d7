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

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bindery.settings import Settings, stack_id_of

SIDES = ("build", "run")


@dataclass(frozen=True)
class StackPaths:
    data_dir: Path

    @classmethod
    def of(cls, settings: Settings) -> "StackPaths":
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
