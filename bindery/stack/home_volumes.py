"""Home volumes on the embedded stack's run engine: size-limited, merged, archived, removed.

Used by the hub's spawner (bindery/stack/spawner.py, which runs in the hub process: this file is
copied beside it as ``bindery_home_volumes.py``, so it needs only the standard library and the
``docker`` package) and by bindery's home cleaner and archive download.

Why loop-mounted ext4: podman 4.3's own volume size option needs XFS project quotas, which this
kernel does not have (docs/homes.md). A podman volume with mount options (``type=ext4``,
``device=<file>``, ``o=loop``) is mounted by podman when a container uses it and unmounted after,
so each home is a file system of exactly its size in a sparse file: a full home refuses writes,
nothing else on the disk notices, and the file's allocated blocks are what the home costs.

A new home is made empty (mkfs's lost+found removed): podman copies a container's image content at
the mount point into an empty named volume the first time a container mounts it, so the server's
own container fills a new home with the repository's files, and no merge container runs before it
starts (only the manifest is written, after the server answers: :func:`manifest`).

Every container here runs without network, capabilities or new privileges, read-only, bounded in
memory, processes and time, and is removed afterwards; none gets any credential.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors

PREFIX = "bindery-home-"
NAME = re.compile(r"bindery-home-[a-z0-9]{16,48}")
LABEL = "bindery.home"  # on every home volume (value: "1")
MOUNT = "/bindery-home"  # where helper containers see the home (never a path of the image's)
MERGE_MEMORY = "256m"
HOME_OWNER = "1000:100"  # jovyan:users, repo2docker's and the base image's user
HELPER_PIDS = 64
BACKGROUND_CPU_SHARES = 2  # the lowest weight (the default is 1024): see _helper
MKFS_TIMEOUT = 60.0
SPARES = "spare"  # subfolder of the homes' folder: ready-made empty home files


class HomeError(RuntimeError):
    """A home could not be made, merged or read; the message is for the person."""


def valid_name(name: object) -> bool:
    return isinstance(name, str) and NAME.fullmatch(name) is not None


def volume_file(folder: Path, name: str) -> Path:
    return Path(folder) / f"{name}.ext4"


def spare_file(folder: Path, size_mb: int, owner: str | None = None) -> Path:
    """The ready-made empty home file of this size and owner (see :func:`make_spare`); outside
    the folder's own files, so neither the cleaner nor the disk count sees it as a home."""
    return Path(folder) / SPARES / f"{size_mb}m-{(owner or HOME_OWNER).replace(':', '-')}.ext4"


def _make_file(path: Path, size_mb: int, owner: str | None) -> None:
    """An empty `size_mb` ext4 file system in the sparse file `path`, its root owned by `owner`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size_mb * 1024 * 1024)
    # subprocess, not bindery's process_runner: this runs in the hub process (see above)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-E", f"root_owner={owner or HOME_OWNER}",
                    "-L", "bindery-home", str(path)], check=True, capture_output=True,
                   timeout=MKFS_TIMEOUT)
    # Empty, so that the engine copies the image's home into it (it copies into empty
    # volumes only); e2fsck makes lost+found again if it ever needs one.
    subprocess.run(["debugfs", "-w", "-R", "rmdir lost+found", str(path)], check=True,
                   capture_output=True, timeout=MKFS_TIMEOUT)


def make_spare(folder: Path, size_mb: int, owner: str | None = None) -> bool:
    """Make the spare home file of this size and owner unless there is one; True if made now.

    mkfs and debugfs took 0.04-0.18 s of every anonymous launch (measured on the shared machine),
    before its server's container could be created: with a spare made after the last home's
    server answered, :func:`ensure` only renames it into place."""
    spare = spare_file(folder, size_mb, owner)
    if spare.exists():
        return False
    making = spare.with_name(f"{spare.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        _make_file(making, size_mb, owner)
        os.replace(making, spare)  # whole or not at all: a claim never finds a half-made file
    except (subprocess.SubprocessError, OSError) as exc:
        making.unlink(missing_ok=True)
        raise HomeError(f"could not make a spare home file: {exc}") from exc
    return True


def ensure(api: docker.APIClient, name: str, folder: Path, size_mb: int, owner: str | None = None
           ) -> bool:
    """Make the home volume `name` (a `size_mb` ext4 file system in a sparse file, its root owned
    by `owner`) unless it exists; True if made now. Its file is the spare one if there is one (a
    rename: one claim wins it), else made now."""
    if not valid_name(name):
        raise HomeError(f"not a home volume name: {name!r}")
    with contextlib.suppress(docker.errors.NotFound):
        api.inspect_volume(name)
        return False
    image = volume_file(folder, name)
    image.parent.mkdir(parents=True, exist_ok=True)
    try:
        try:
            os.rename(spare_file(folder, size_mb, owner), image)
        except FileNotFoundError:
            _make_file(image, size_mb, owner)
        api.create_volume(name, driver="local", labels={LABEL: "1"},
                          driver_opts={"type": "ext4", "device": str(image), "o": "loop"})
    except (subprocess.SubprocessError, OSError, docker.errors.APIError) as exc:
        image.unlink(missing_ok=True)
        raise HomeError(f"could not make the home volume: {exc}") from exc
    return True


def image_home(api: docker.APIClient, image: str) -> str:
    """The image's home folder (its HOME variable; /home/jovyan when it sets none)."""
    env = (api.inspect_image(image).get("Config") or {}).get("Env") or []
    for item in env:
        if item.startswith("HOME=") and item[5:].startswith("/") and item[5:] != "/":
            return item[5:].rstrip("/")
    return "/home/jovyan"


def _helper(api: docker.APIClient, image: str, name: str, command: list[str], read_only: bool,
            user: str | None = None, container_name: str | None = None,
            background: bool = False) -> str:
    host = api.create_host_config(
        binds={name: {"bind": MOUNT, "mode": "ro" if read_only else "rw"}}, network_mode="none",
        cap_drop=["ALL"], security_opt=["no-new-privileges"], read_only=True,
        pids_limit=HELPER_PIDS, mem_limit=MERGE_MEMORY, tmpfs={"/tmp": "rw,size=16m"},
        # work nobody waits for yields the CPU to launches that somebody waits for
        cpu_shares=BACKGROUND_CPU_SHARES if background else None)
    if container_name is not None:  # one left by a hub that died mid-merge
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_container(container_name, force=True)
    # No stack label: these are not servers (tests and tools that count servers by it), and each
    # is removed when it ends; a merge's fixed name lets the next merge remove a leftover.
    return api.create_container(image, command=command[1:], entrypoint=command[:1],
                                host_config=host, labels={LABEL: "helper"},
                                network_disabled=True, user=user or "", name=container_name)["Id"]


def merge(api: docker.APIClient, name: str, image: str, script: str, timeout: float) -> str:
    """Merge the image's home (the repository's files) into the home volume with `script`
    (bindery/home_merge.py) in a confined container of the image; the image's home folder."""
    home = image_home(api, image)
    with contextlib.suppress(docker.errors.NotFound):  # a manifest's left by a hub that died
        api.remove_container(f"bindery-manifest-{name[len(PREFIX):]}", force=True)
    _run_script(api, name, image, script, [home, MOUNT], timeout,
                "merging the repository's files into the home", "merge")
    return home


def manifest(api: docker.APIClient, name: str, image: str, script: str, timeout: float) -> None:
    """Write the manifest of the image's home files into a new home the engine filled from the
    image (see the module's doc), with `script` in a confined container of the image."""
    _run_script(api, name, image, script, ["--manifest", image_home(api, image), MOUNT], timeout,
                "writing the home's manifest of the repository's files", "manifest",
                background=True)


def _run_script(api: docker.APIClient, name: str, image: str, script: str, args: list[str],
                timeout: float, doing: str, kind: str, background: bool = False) -> None:
    # As the home's owner (not the image's user, which may be root: without capabilities root
    # could not write into a home it does not own).
    container = _helper(api, image, name, ["python3", "-I", "-c", script, *args], False,
                        user=HOME_OWNER, container_name=f"bindery-{kind}-{name[len(PREFIX):]}",
                        background=background)
    try:
        api.start(container)
        try:
            status = api.wait(container, timeout=timeout).get("StatusCode", 1)
        except Exception as exc:  # the engine's read timeout: the merge took too long
            raise HomeError(f"{doing} took longer than {timeout:.0f} s") from exc
        if status != 0:
            output = api.logs(container, stdout=False, stderr=True, tail=5).decode(errors="replace")
            raise HomeError(f"{doing} failed "
                            f"(exit {status}): {output.strip()[-500:]}")
    finally:
        with contextlib.suppress(docker.errors.APIError):
            api.remove_container(container, force=True)


def archive(api: docker.APIClient, name: str, image: str, deadline: float | None = None
            ) -> Iterator[bytes]:
    """The home as a tar.gz, streamed from a read-only container of `image` (which needs tar):
    the person's files, without the merge's manifest or the file system's lost+found."""
    container = _helper(api, image, name, [
        "tar", "-cz", "-C", MOUNT, "--exclude=./lost+found", "--exclude=./.bindery-home.json",
        "."], True, user=HOME_OWNER)
    try:
        stream = api.attach(container, stdout=True, stderr=False, stream=True, logs=True)
        api.start(container)
        for chunk in stream:
            if deadline is not None and time.monotonic() > deadline:
                raise HomeError("the archive took too long")
            yield chunk
    finally:
        with contextlib.suppress(docker.errors.APIError):
            api.remove_container(container, force=True)


def names(api: docker.APIClient) -> list[str]:
    """The run engine's home volumes."""
    volumes = api.volumes(filters={"label": LABEL}).get("Volumes") or []
    return [v["Name"] for v in volumes if valid_name(v.get("Name"))]


def in_use(api: docker.APIClient) -> set[str]:
    """Home volumes a container (running or not) mounts."""
    out = set()
    for container in api.containers(all=True):
        for mount in container.get("Mounts") or []:
            if valid_name(mount.get("Name")):
                out.add(mount["Name"])
    return out


def remove(api: docker.APIClient, name: str, folder: Path) -> bool:
    """Remove the volume and its file; False when a container still uses it."""
    try:
        api.remove_volume(name)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if getattr(exc, "status_code", None) == 409:  # in use
            return False
        raise
    volume_file(folder, name).unlink(missing_ok=True)
    return True


def folder_bytes(folder: Path) -> int:
    """Bytes the home files take on disk (allocated blocks of the sparse files)."""
    if not Path(folder).is_dir():
        return 0
    return sum(entry.stat().st_blocks * 512 for entry in os.scandir(folder)
               if entry.name.endswith(".ext4") and entry.is_file())
