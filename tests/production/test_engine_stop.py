"""An engine's stop leaves nothing of its store behind: no container monitor lives on to mount the
store again after `bindery down` (the data folder could not be removed then)."""

from __future__ import annotations

import contextlib
import os
import secrets

from bindery.backoff import WaitTimeout, wait_until
from bindery.engine_clients import docker_client
from bindery.stack import podman
from bindery.datadir import StackPaths


def monitors_of(stack, container_id: str, *, watching: bool | None = None) -> list[int]:
    """pids of the monitors that watch this container or one of its exec sessions (with
    `watching`, only those whose bundle folder exists, or only those whose is gone)."""
    return sorted(m.pid for m in podman.monitors(StackPaths.of(stack), "run")
                  if m.container == container_id
                  and (watching is None or os.path.isdir(m.bundle) == watching))


def test_monitors_of_removed_containers_are_stopped_running_ones_kept(stack, base_image):
    client = docker_client(stack.run_socket, 60)
    name = f"test-monitors-{secrets.token_hex(3)}"
    gone = client.containers.run(base_image, ["sleep", "600"], detach=True, name=f"{name}-gone")
    kept = client.containers.run(base_image, ["sleep", "600"], detach=True, name=f"{name}-kept")
    try:
        for container in (gone, kept):
            assert container.exec_run(["true"]).exit_code == 0  # an operator's `podman exec`
        kept.exec_run(["sleep", "600"], detach=True)  # an exec session still running
        with contextlib.suppress(WaitTimeout):  # asserted below, with what there is
            wait_until(lambda: len(monitors_of(stack, kept.id, watching=True)) >= 2, timeout=10, interval=0.05,
                       what="two monitors watching the kept container")
        watching_kept = monitors_of(stack, kept.id, watching=True)
        assert len(watching_kept) >= 2, watching_kept  # the container's and the running session's
        gone.remove(force=True)
        # What this guards against: the exec session's monitor outlives its container.
        assert monitors_of(stack, gone.id), "podman no longer keeps exec monitors: test premise gone"

        killed = podman.stop_orphaned_monitors(StackPaths.of(stack), "run")
        assert killed >= 1
        with contextlib.suppress(WaitTimeout):  # SIGKILL was sent; the kernel takes a moment to reap
            wait_until(lambda: not monitors_of(stack, gone.id) and monitors_of(stack, kept.id) == watching_kept,
                       timeout=10, interval=0.05, what="the removed container's monitors reaped")
        assert monitors_of(stack, gone.id) == []
        # A running container's monitors and its running session's are untouched (a finished
        # session's, whose bundle podman already removed, watches nothing and may go).
        assert monitors_of(stack, kept.id) == watching_kept
        kept.reload()
        assert kept.status == "running" and kept.exec_run(["true"]).exit_code == 0
    finally:
        for container in (gone, kept):
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already removed above
                pass
        client.close()
