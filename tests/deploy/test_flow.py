"""The deploy flow's guarantees, with a fake machine: old never stops before new is healthy and verified; red rolls
back and verifies again; transient faults are retried and visible; a missing artifact fails with the named message."""

from __future__ import annotations

from pathlib import Path

import pytest

from bindery.deploy import verdicts as records
from bindery.deploy.flow import Deployer, Slot
from bindery.deploy.instances import InstanceConfig
from bindery.backoff import Backoff
from bindery.artifacts.store import FolderStore

from .fakes import PUBLIC, FakeMachine

A = "0.1.dev4+gaaaaaaaaaaaa"
B = "0.1.dev5+gbbbbbbbbbbbb"
FAST = Backoff(attempts=4, deadline=5, first=0.0)


def config(version: str) -> InstanceConfig:
    return InstanceConfig(name="staging", version=version, public_port=PUBLIC, backend_ports=(19585, 19586),
                          canary="git/canary/HEAD", health_timeout=5)


@pytest.fixture
def store(tmp_path: Path) -> FolderStore:
    s = FolderStore(tmp_path / "artifacts")
    for v in (A, B):
        wheel = tmp_path / "b" / f"bindery-{v}-py3-none-any.whl"
        wheel.parent.mkdir(exist_ok=True)
        wheel.write_bytes(v.encode())
        s.put(wheel, v, "0" * 40)
    return s


def deploy(machine: FakeMachine, store: FolderStore, version: str, deploy_dir: Path, **kw):  # noqa: ANN201
    with machine.client() as client:
        d = Deployer(config(version), store, machine, client, deploy_dir, backoff=FAST, health_poll=0.0, **kw)
        return d.deploy()


def test_first_deploy_green(store: FolderStore, tmp_path: Path) -> None:
    m = FakeMachine()
    report = deploy(m, store, A, tmp_path)
    assert report.green, report.to_text()
    assert m.log == ["start 0.1.dev4+gaaaaaaaaaaaa@19585", "switch 0.1.dev4+gaaaaaaaaaaaa@19585"]
    healthy = next(c for c in report.checks if c.name == "healthy")
    assert healthy.retried and all(a.kind == "transient" for a in healthy.attempts[:-1])  # 503 while starting
    assert records.latest(tmp_path, "staging", A).green


def test_upgrade_green_stops_old_only_after_verification(store: FolderStore, tmp_path: Path) -> None:
    m = FakeMachine()
    deploy(m, store, A, tmp_path)
    report = deploy(m, store, B, tmp_path)
    assert report.green and report.previous_version == A
    assert m.log[2:] == [f"start {B}@19586", f"switch {B}@19586", f"stop {A}@19585"]
    names = [c.name for c in report.checks]
    assert names.index("canary launch") < names.index("stop old")


def test_broken_launch_is_real_rolls_back_and_verifies_old(store: FolderStore, tmp_path: Path) -> None:
    m = FakeMachine(broken_launch={B})
    assert deploy(m, store, A, tmp_path).green
    report = deploy(m, store, B, tmp_path)
    assert not report.green
    failure = report.first_failure
    assert failure.name == "canary launch" and failure.kind == "real" and len(failure.attempts) == 1
    assert "spawn never followed to ready" in failure.attempts[0].reason
    assert report.rollback is not None and report.rollback.green, report.to_text()
    assert m.live_slot.version == A and m.log[-2:] == [f"switch {A}@19585", f"stop {B}@19586"]
    assert f"stop {A}@19585" not in m.log  # the old one was never stopped
    assert not records.latest(tmp_path, "staging", B).green
    assert records.latest(tmp_path, "staging", A).green
    assert "rollback staging → 0.1.dev4" in report.to_text()


def test_403_is_real(store: FolderStore, tmp_path: Path) -> None:
    m = FakeMachine(forbidden={B})
    deploy(m, store, A, tmp_path)
    report = deploy(m, store, B, tmp_path)
    assert report.first_failure.name == "open server" and report.first_failure.kind == "real"
    assert report.rollback.green and m.live_slot.version == A


def test_unhealthy_new_version_never_takes_traffic(store: FolderStore, tmp_path: Path) -> None:
    m = FakeMachine(unhealthy={B})
    deploy(m, store, A, tmp_path)
    served_before = len(m.served_by)
    with m.client() as client:
        d = Deployer(config(B).model_copy(update={"health_timeout": 0.3}), store, m, client, tmp_path, backoff=FAST,
                     health_poll=0.01)
        report = d.deploy()
    assert not report.green and report.first_failure.name == "healthy"
    assert "JupyterHub" in report.first_failure.attempts[-1].evidence.get("broken", [])
    assert m.front == 19585 and m.live_slot.version == A and f"switch {B}@19586" not in m.log
    assert m.log[-1] == f"stop {B}@19586" and 19585 in m.procs
    assert set(m.served_by[served_before:]) <= {A}


def test_transient_hub_blip_is_retried_and_green(store: FolderStore, tmp_path: Path) -> None:
    m = FakeMachine()
    deploy(m, store, A, tmp_path)
    m.hub_blips = 2
    report = deploy(m, store, B, tmp_path)
    assert report.green, report.to_text()
    launch = next(c for c in report.checks if c.name == "canary launch")
    assert len(launch.attempts) == 3 and [a.kind for a in launch.attempts] == ["transient", "transient", None]
    assert "#1 transient: ConnectError: connection refused (hub restarting)" in report.to_text()


def test_missing_artifact_fails_with_the_named_message(store: FolderStore, tmp_path: Path) -> None:
    m = FakeMachine()
    missing = "0.1.dev9+gcccccccccccc"
    report = deploy(m, store, missing, tmp_path, artifact_timeout=0.2)
    assert not report.green and report.first_failure.name == "artifact"
    reason = report.first_failure.attempts[0].reason
    assert f"waiting for bindery {missing} wheel in {store.location}" in reason and "gave up at the bound" in reason
    assert m.log == []


def test_no_canary_is_never_green(store: FolderStore, tmp_path: Path) -> None:
    m = FakeMachine()
    with m.client() as client:
        report = Deployer(config(A).model_copy(update={"canary": ""}), store, m, client, None, backoff=FAST,
                          health_poll=0.0).deploy()
    assert not report.green and any("no canary" in n for n in report.notes)


def test_redeploy_of_live_version_verifies_it(store: FolderStore, tmp_path: Path) -> None:
    m = FakeMachine()
    deploy(m, store, A, tmp_path)
    report = deploy(m, store, A, tmp_path)
    assert report.green and report.action == "verify" and m.log.count(f"start {A}@19585") == 1


def test_rollback_restarts_old_when_it_died(store: FolderStore, tmp_path: Path) -> None:
    m = FakeMachine(broken_launch={B})
    deploy(m, store, A, tmp_path)
    del m.procs[19585]  # old crashed meanwhile
    report = deploy(m, store, B, tmp_path)
    assert report.rollback.green and m.live_slot == Slot(A, 19585, 19585)


# -- several replicas behind HAProxy: rolling deploys ------------------------------------------------------------
REPLICAS = [19601, 19602, 19603]


def roll(machine: FakeMachine, store: FolderStore, version: str, deploy_dir: Path):  # noqa: ANN201
    with machine.client() as client:
        cfg = config(version).model_copy(update={"replica_ports": REPLICAS, "health_timeout": 0.3})
        return Deployer(cfg, store, machine, client, deploy_dir, backoff=FAST, health_poll=0.01).deploy()


def test_rolling_deploy_replaces_replicas_one_at_a_time(store: FolderStore, tmp_path: Path) -> None:
    m = FakeMachine()
    assert roll(m, store, A, tmp_path).green
    m.log.clear()
    report = roll(m, store, B, tmp_path)
    assert report.green, report.to_text()
    assert m.log == [entry for p in REPLICAS for entry in (f"stop {A}@{p}", f"start {B}@{p}", f"in rotation {B}@{p}")]
    # Each replica was healthy, named the version and was routed to before the next was touched; the others
    # served meanwhile.
    names = [c.name for c in report.checks]
    for i in range(1, len(REPLICAS)):
        assert (names.index(f"version replica {i}/3") < names.index(f"in rotation replica {i}/3")
                < names.index(f"stop replica {i + 1}/3"))
    assert m.serving_during == [2, 2, 2]
    assert names[-1] != "healthy replica 3/3" and "canary launch" in names  # verified at the end, as today
    assert {s.version for s in m.procs.values()} == {B}


def test_rolling_deploy_stops_at_an_unhealthy_replica_and_puts_it_back(store: FolderStore, tmp_path: Path) -> None:
    m = FakeMachine()
    assert roll(m, store, A, tmp_path).green
    m.unhealthy.add(B)
    m.log.clear()
    report = roll(m, store, B, tmp_path)
    assert not report.green
    assert m.log == [f"stop {A}@19601", f"start {B}@19601", f"stop {B}@19601",
                     f"start {A}@19601", f"in rotation {A}@19601"]  # the other two replicas were never touched
    assert {p: s.version for p, s in m.procs.items()} == {p: A for p in REPLICAS}
    assert report.rollback is not None and report.rollback.green, report.rollback.to_text()


def test_rolling_deploy_red_canary_rolls_every_replica_back(store: FolderStore, tmp_path: Path) -> None:
    m = FakeMachine()
    assert roll(m, store, A, tmp_path).green
    m.broken_launch.add(B)
    report = roll(m, store, B, tmp_path)
    assert not report.green and report.first_failure.name == "canary launch"
    assert report.rollback is not None and report.rollback.green, report.rollback.to_text()
    assert {p: s.version for p, s in m.procs.items()} == {p: A for p in REPLICAS}
    assert records.latest(tmp_path, "staging", B).green is False
