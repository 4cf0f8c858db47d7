"""The build store is a file system of its own: builds together cannot fill the host's disk."""

from __future__ import annotations

import errno
import os

import pytest

from bindery.datadir import StackPaths
from bindery.settings import Settings
from bindery.stack import podman


def test_the_build_store_is_bounded_by_its_own_file_system(tmp_path):
    size = 64 * 1024 * 1024
    settings = Settings(data_dir=tmp_path / "data", build_store_size=size)
    paths = StackPaths.of(settings)
    podman.mount_build_store(settings, paths, log=lambda _: None)
    store = paths.store("build")
    try:
        assert os.path.ismount(store)
        with pytest.raises(OSError) as full:
            with open(store / "fill", "wb") as f:
                for _ in range(2 * size // 2**22):  # twice the store's size
                    f.write(b"\1" * 2**22)
                f.flush()
                os.fsync(f.fileno())
        assert full.value.errno == errno.ENOSPC
        # the host gave the store its size and nothing more
        assert os.stat(podman.store_image(paths)).st_blocks * 512 <= size
    finally:
        podman.unmount_build_store(paths)
    assert not os.path.ismount(store)
    podman.mount_build_store(settings, paths, log=lambda _: None)  # made once, mounted again
    try:
        assert os.path.ismount(store) and (store / "fill").exists()
    finally:
        podman.unmount_build_store(paths)
