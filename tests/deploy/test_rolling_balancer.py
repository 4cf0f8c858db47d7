"""The deploy's load balancer for several replicas (LocalRuntime.balance): real HAProxy in front of two real HTTP
backends, routing around one that stops, stopped by `down`. The rolling order itself is tested in test_flow.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bindery.backoff import wait_until
from bindery.deploy.classify import CheckFailed
from bindery.deploy.flow import Slot
from bindery.deploy.instances import InstanceConfig
from bindery.deploy.local_runtime import LocalRuntime
from bindery.stack import balancer, process
from bindery.stack.balancer import REPLICA_HEADER
from bindery.datadir import StackPaths
from tests.conftest import free_port


def backend(root: Path, port: int) -> subprocess.Popen:
    """A static HTTP server whose /health and /versions answer 200."""
    root.mkdir()
    (root / "health").write_text("ok")
    (root / "versions").write_text(str(port))
    return subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def served_by(url: str, n: int) -> set[str]:
    seen = set()
    for _ in range(n):
        r = httpx.get(url + "/versions", timeout=5)
        assert r.status_code == 200, r.status_code
        seen.add(r.headers[REPLICA_HEADER])
    return seen


def test_balance_routes_over_replicas_and_around_a_stopped_one(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    config = InstanceConfig(name="rolling", public_port=free_port(), backend_ports=(free_port(), free_port()),
                            replica_ports=ports, stack=False, settings={"data_dir": str(tmp_path / "data")})
    runtime = LocalRuntime(config, tmp_path / "deploy")
    servers = [backend(tmp_path / f"b{i}", p) for i, p in enumerate(ports)]
    try:
        for p in ports:
            wait_until(lambda p=p: _answers(p), timeout=20, what=f"backend on {p}")
        info = runtime.balance(ports)
        assert process.alive(info["pid"])
        assert wait_until(lambda: served_by(config.public_url, 6) == {"replica-1", "replica-2"}, timeout=20,
                          what="both replicas serve")
        again = runtime.balance(ports)  # idempotent: the same HAProxy keeps running during a roll
        assert again["pid"] == info["pid"]
        assert runtime.in_rotation(Slot("v", ports[1]))["replica"] == "replica-2"
        servers[0].terminate()
        servers[0].wait(10)
        # A refused connection is retried on the other replica: no request fails while replica-1 is away.
        assert served_by(config.public_url, 10) == {"replica-2"}
        # HAProxy's stats socket says so too, and a replica out of rotation is a real failure of the roll.
        wait_until(lambda: balancer.server_states(StackPaths(runtime.dir)).get("replica-1", "").startswith("DOWN"),
                   timeout=20, what="HAProxy marks replica-1 DOWN")
        with pytest.raises(CheckFailed, match="does not route to replica-1"):
            runtime.config = config.model_copy(update={"health_timeout": 1.0})
            runtime.in_rotation(Slot("v", ports[0]))
        assert "balancer" in runtime.down(stack_too=False)["stopped"]
        assert not process.alive(info["pid"])
    finally:
        for s in servers:
            s.kill()
            s.wait(10)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
