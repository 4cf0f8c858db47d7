"""How many bytes a store takes, and the budgets bindery keeps each store under.

A store's use is what its folder holds on disk (allocated blocks, hard links once), walked without
leaving its file system: a running container's root is an overlay mount inside the store, whose
files are already counted in the layers it is made of.

A budget of 0 in the settings means "derived from the disk the data folder is on": a share of its
size, so a default install on any disk leaves room for the rest of the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bindery import process_runner
from bindery.datadir import disk_size

# Shares of the data folder's disk each store may use by default (together 87%: the rest is the
# hub's database, logs, the commit cache, the system's own).
DU_ATTEMPTS = 3  # walks of a store whose folders vanish under du (layers being removed)
DEFAULT_SHARE = {"run": 0.25, "build": 0.20, "registry": 0.30, "homes": 0.10, "state": 0.02}


@dataclass(frozen=True)
class Budget:
    store: str  # run, build, registry, homes, state
    bytes: int
    high: int  # above this a pass cleans...
    low: int  # ...until use is under this

    @classmethod
    def of(cls, store: str, configured: int, disk_of: Path, high_ratio: float,
           low_ratio: float) -> Budget:
        total = configured or int(disk_size(disk_of) * DEFAULT_SHARE[store])
        return cls(store, total, int(total * high_ratio), int(total * low_ratio))


def folder_bytes(folder: Path, timeout: float = 120.0) -> int:
    """Bytes ``folder`` takes on disk: blocks allocated, each inode once, one file system only.

    ``du`` in a process of its own: a store holds hundreds of thousands of files (Python
    environments), and walking them in the service's process would hold its interpreter for
    seconds."""
    for _ in range(DU_ATTEMPTS):
        if not folder.exists():
            return 0
        proc = process_runner.run(["du", "-s", "-x", "-B1", folder], timeout=timeout)
        # du exits 1 when a file vanished while it walked (a layer being removed): its sum stands.
        # When a folder on its way vanished too it can print no sum at all: walked again.
        if proc.stdout.strip():
            return int(proc.stdout.split()[0])
    raise OSError(f"du {folder} failed {DU_ATTEMPTS} times ({proc.returncode}): "
                  f"{proc.stderr.strip()[-300:]}")
