"""How many bytes a store takes, and the budgets bindery keeps each store under.

A store's use is what its folder holds on disk (allocated blocks, hard links once), walked without
leaving its file system: a running container's root is an overlay mount inside the store, whose
files are already counted in the layers it is made of.

A budget of 0 in the settings means "derived from the disk the data folder is on": a share of its
size, so a default install on any disk leaves room for the rest of the machine.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

# Shares of the data folder's disk each store may use by default (together 75%: the rest is the
# hub's database, logs, the state store, the system's own).
DEFAULT_SHARE = {"run": 0.25, "build": 0.20, "registry": 0.30}


@dataclass(frozen=True)
class Budget:
    store: str  # run, build, registry
    bytes: int
    high: int  # above this a pass cleans...
    low: int  # ...until use is under this

    @classmethod
    def of(cls, store: str, configured: int, disk_of: Path, high_ratio: float,
           low_ratio: float) -> Budget:
        total = configured or int(disk_size(disk_of) * DEFAULT_SHARE[store])
        return cls(store, total, int(total * high_ratio), int(total * low_ratio))


def disk_size(path: Path) -> int:
    """Bytes of the file system holding ``path`` (its nearest existing folder)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).total


def folder_bytes(folder: Path) -> int:
    """Bytes ``folder`` takes on disk: blocks allocated, each inode once, one file system only."""
    try:
        device = folder.stat().st_dev
    except FileNotFoundError:
        return 0
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [str(folder)]
    while stack:
        current = stack.pop()
        try:
            entries = os.scandir(current)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue  # removed while walking (a layer being deleted), or not ours to read
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if st.st_dev != device:
                    continue  # a mount inside the store: a container's root, counted in its layers
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return total
