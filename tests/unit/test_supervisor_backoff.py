"""The supervisor's pauses between attempts at a part that does not come back: doubling from 1 s,
capped, reset by a success; parts never seen running are left alone."""

from __future__ import annotations

from pathlib import Path

from bindery import stack
from bindery.settings import Settings
from bindery.stack.supervisor import Supervisor, read


def test_a_part_that_stays_down_is_tried_with_bounded_backoff(tmp_path: Path, monkeypatch):
    settings = Settings(data_dir=tmp_path, supervise_backoff_cap_seconds=4)
    state = {"registry": "running", "hub": "running", "web": "stopped"}  # web: `up --no-web`
    monkeypatch.setattr(stack, "status", lambda s: {"parts": {
        n: {"state": v} for n, v in state.items()}})
    now = [1000.0]
    sup = Supervisor(settings, clock=lambda: now[0])
    tries: list[float] = []

    def failing(say):
        tries.append(now[0])
        raise RuntimeError("port in use")

    sup.restarters = {**sup.restarters, "registry": failing, "web": failing}
    assert sup.round() == []  # all it knows runs; web never ran
    state["registry"] = "stopped"
    for _ in range(40):  # 20 s in half-second rounds
        sup.round()
        now[0] += 0.5
    pauses = [b - a for a, b in zip(tries, tries[1:])]
    assert pauses[:3] == [1.0, 2.0, 4.0] and max(pauses) == 4.0  # doubling, then the cap
    assert read(settings)["parts"]["registry"]["last_error"] == "RuntimeError: port in use"

    sup.restarters["registry"] = lambda say: None  # it comes back
    now[0] += 5
    assert sup.round() == ["registry"]
    assert read(settings)["parts"]["registry"]["restarts"] == 1
    assert "web" not in read(settings)["parts"]


def test_prometheus_of_up_monitoring_stays_listed_and_watched_when_killed(tmp_path: Path):
    """`up --monitoring`'s Prometheus, killed: still a part of the stack (stopped), which the
    supervisor knows how to start again; `down` (its record gone) ends that."""
    import json

    from bindery.datadir import StackPaths
    from bindery.stack import prometheus_server

    settings = Settings(data_dir=tmp_path, supervise=True)
    paths = StackPaths.of(settings)
    paths.make()
    # what a killed Prometheus leaves: its record, no process (pid_max is below 2**22)
    paths.pid(prometheus_server.NAME).write_text(json.dumps({"pid": 2**22 + 1, "argv": ["prometheus"]}))
    assert stack.status(settings)["parts"]["prometheus"]["state"] == "stopped"
    assert "prometheus" in Supervisor(settings).restarters
    prometheus_server.stop(settings)
    assert "prometheus" not in stack.status(settings)["parts"]


def test_a_proxy_the_hub_started_again_is_logged_and_counted(tmp_path: Path, monkeypatch, caplog):
    """The hub restarts its own proxy, often between two looks of the supervisor: a new proxy
    under the same hub is counted as the proxy's restart; a new hub's new proxy is not."""
    from bindery.stack import jupyterhub, process

    monkeypatch.setattr(stack, "status", lambda s: {"parts": {"hub": {"state": "running"}}})
    seen = {"hub": 100, "proxy": 200}
    monkeypatch.setattr(process, "read_pid", lambda paths, name: seen["hub"])
    monkeypatch.setattr(jupyterhub, "proxy_pid", lambda settings: seen["proxy"])
    sup = Supervisor(Settings(data_dir=tmp_path))
    assert sup.round() == []
    seen["proxy"] = 201  # killed; the same hub started another
    assert sup.round() == ["proxy"] and sup.round() == []
    seen.update(hub=101, proxy=300)  # the hub itself was started again, with a proxy of its own
    assert sup.round() == []
    assert read(sup.settings)["parts"]["proxy"]["restarts"] == 1
    assert "proxy is back: it died and the hub started it again (pid 201" in caplog.text


def test_a_killed_replica_is_started_again(tmp_path: Path, monkeypatch):
    """With replicas, the public address (part `web`, HAProxy) still answers when one replica
    died: the replica's own part being down is what brings it back."""
    state = {"web": "running", "balancer": "running", "replica-1": "running", "replica-2": "running"}
    monkeypatch.setattr(stack, "status", lambda s: {"parts": {
        n: {"state": v} for n, v in state.items()}})
    sup = Supervisor(Settings(data_dir=tmp_path))
    started: list[str] = []
    sup.restarters = {**sup.restarters, "web": lambda say: started.append("web")}
    sup.round()
    state["replica-2"] = "stopped"
    assert sup.round() == ["replica-2"] and started == ["web"]
