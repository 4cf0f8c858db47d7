"""The sandbox of a build's steps: what every build request asks of the build engine.

repo2docker builds through the engine's Docker API, and podman 4.3's build runs the steps (each
Dockerfile ``RUN``, so every buildpack install and postBuild) in the engine's own network
namespace, as root with the engine's default capabilities, unless the request says otherwise.
These query parameters of the build request (podman's compat build API; repo2docker's docker
client cannot say them, so the build image's entry adds them: bindery/builds/repo2docker_entry.py)
say otherwise:

- ``nsoptions``: the network namespace of each step is a new one on the stack's build network
  (bindery/stack/build_network.py: the public internet, the operator's mirrors, DNS; nothing of
  this machine);
- ``dropcaps``: root in a step loses raw sockets, network and system administration, device
  nodes and the rest a package install does not need;
- ``cgroupparent``: each build's steps run in a leaf of the stack's build cgroup, whose pids
  limit bounds their processes;
- ``ulimits``: no file a step writes grows past the build's disk budget (``build_disk_max_bytes``).

A user namespace for the steps is not asked for: podman 4.3's compat build maps the step's root
but not the image's files (the step cannot write its own root file system). The dropped
capabilities and the network are what keeps root in a step from the host.
"""

from __future__ import annotations

import json

from bindery.settings import Settings
from bindery.stack import build_network, podman

# Capabilities a build step loses (podman's defaults keep CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
# KILL, SETGID, SETUID, SETPCAP, SETFCAP, SYS_CHROOT: what apt, dpkg and pip use).
DROPPED = ("CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_MKNOD", "CAP_AUDIT_WRITE",
           "CAP_NET_BIND_SERVICE", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
           "CAP_SYS_TIME", "CAP_SYS_BOOT", "CAP_DAC_READ_SEARCH", "CAP_SYS_RESOURCE",
           "CAP_LINUX_IMMUTABLE", "CAP_IPC_LOCK", "CAP_BPF", "CAP_PERFMON", "CAP_SYSLOG")


def options(settings: Settings, build: str) -> dict[str, str] | None:
    """The build request's sandbox parameters for the build named ``build``; None where the
    stack does not run the build engine (an operator's engine is confined by its operator)."""
    if settings.builds.build_executor != "engine" or not podman.embedded(settings, "build"):
        return None
    return {
        "nsoptions": json.dumps([{"Name": "network", "Path": build_network.network_name(settings)}]),
        "dropcaps": json.dumps(list(DROPPED)),
        "cgroupparent": f"/{build_network.cgroup(settings)}/{build}",
        # RLIMIT_FSIZE: no file of a step grows past the disk budget (a `yes > fill` stops there)
        "ulimits": json.dumps([f"fsize={settings.builds.build_disk_max_bytes}:"
                               f"{settings.builds.build_disk_max_bytes}"]),
    }
