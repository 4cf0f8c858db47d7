"""Deploys on real instances: two stacks side by side (staging, prod), real wheels, real launches.

Releases A and B are wheels built with `bindery release` from throwaway clones of this repository; B carries the
first seed's bug (a launcher that says `ready` as soon as the hub answers the start request, without following the
spawn). Each instance has its own stack (engines, registry, hub), brought up by the deploy itself, with a low
slow_spawn_timeout, and the canary image is removed from the run side before B is verified, so the hub answers 202.

The order of the tests is the order an operator would go: A to staging (through a hub outage), A promoted to prod
(whose artifact is published while the deploy waits), B to staging (red, rolled back, not promotable, prod polled
throughout), a version that was never released (fails at the bound, naming what it waited for).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from bindery.deploy import version_commits as deploygit, instances, probes
from bindery.deploy.flow import Deployer
from bindery.deploy.local_runtime import LocalRuntime
from bindery.deploy.verify import http_client
from bindery.artifacts.store import Artifact, FolderStore
from bindery.versioning import version_of
from bindery.stack import jupyterhub as stack_hub
from bindery.stack import podman
from tests.conftest import ARTIFACTS, TEST_ALLOWED_NETWORKS, free_port
from tests.gitserver import GitServer

ROOT = Path(__file__).resolve().parents[2]
GIT_ID = ["-c", "user.name=deploy test", "-c", "user.email=deploy@test.invalid", "-c", "commit.gpgsign=false"]
SEED_BUG = '''    async def _spawn(self, name: str, start: dict[str, str], for_person: bool = True
                     ) -> AsyncIterator[Event]:
        # B: the first seed's bug. Trust the start request's answer (202 = "pending") as "ready".
        token = await self.hub.mint_token(name, self.config.token_lifetime, "bindery launch",
                                          person_token_scopes(name))
        status = await self.hub.start_server(name, start, timeout=self.config.timeout)
        url = self.config.hub_url.rstrip("/") + f"/user/{name}/"
        yield Event(phase="ready", message=f"server running at {url}\\n", url=url, token=token,
                    hub_status=status, user=name)
        return
'''


def run(*argv: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, cwd=cwd)


def bindery(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "bindery", *args, timeout=timeout)


@dataclass
class World:
    deploy_dir: Path
    store: FolderStore  # the artifact store deploys read
    a: Artifact
    b: Artifact  # built, not yet published into ``store``
    b_repo: Path
    staging: instances.InstanceConfig
    prod: instances.InstanceConfig
    timings: dict[str, float]

    def config(self, name: str) -> instances.InstanceConfig:
        return instances.load(self.deploy_dir, name)

    def runtime(self, name: str) -> LocalRuntime:
        return LocalRuntime(self.config(name), self.deploy_dir)

    def deployer(self, name: str, store: FolderStore | None = None, artifact_timeout: float = 60,
                 client: httpx.Client | None = None, say=lambda m: None) -> Deployer:  # noqa: ANN001
        config = self.config(name)
        return Deployer(config, store or self.store, LocalRuntime(config, self.deploy_dir),
                        client or http_client(), self.deploy_dir, artifact_timeout, say=say)


def _release(tmp: Path, name: str, patch: bool) -> tuple[Path, Path, subprocess.Popen]:
    clone = tmp / name
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    if patch:
        launcher = clone / "bindery" / "launches" / "launcher.py"
        text = launcher.read_text()
        head = ("    async def _spawn(self, name: str, start: dict[str, str], for_person: bool = True\n"
                "                     ) -> AsyncIterator[Event]:\n")
        assert head in text
        launcher.write_text(text.replace(head, SEED_BUG, 1))
        subprocess.run(["git", "-C", str(clone), *GIT_ID, "commit", "-q", "-am",
                        "launcher: ready as soon as the hub answers the start request"], check=True, timeout=60)
    store = tmp / f"store-{name}"
    proc = subprocess.Popen([sys.executable, "-m", "bindery", "release", "--repo", str(clone), "--store", str(store),
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return clone, store, proc


def _instance_toml(name: str, data_dir: Path, canary: str) -> str:
    ports = {k: free_port() for k in ("hub_port", "proxy_port", "proxy_api_port", "registry_port")}
    settings = "\n".join(f"{k} = {v}" for k, v in ports.items())
    return (f'version = ""\npublic_port = {free_port()}\nbackend_ports = [{free_port()}, {free_port()}]\n'
            f'canary = "{canary}"\nhealth_timeout = 90\nlaunch_timeout = 240\n\n'
            f'[settings]\ndata_dir = "{data_dir}"\n{settings}\nhub_slow_spawn_timeout = 0.2\n'
            f'keepalive_seconds = 5\nlaunch_retries = 3\n'
            # the canary's git server is on 127.0.0.1: allowed like the session stack's
            f'repo_allowed_networks = {json.dumps(TEST_ALLOWED_NETWORKS)}\n')


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, git_server: GitServer):
    tmp = tmp_path_factory.mktemp("deploy")
    t0 = time.monotonic()
    a_repo, a_store, a_proc = _release(tmp, "a", patch=False)
    b_repo, b_store, b_proc = _release(tmp, "b", patch=True)
    for proc in (a_proc, b_proc):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    a = FolderStore(a_store).find(version_of(a_repo))
    b = FolderStore(b_store).find(version_of(b_repo))
    assert a and b and a.version != b.version
    timings = {"release A and B (parallel)": round(time.monotonic() - t0, 1)}

    _, canary_url = git_server.create("canary", {
        "Dockerfile": "ARG BINDERY_BASE_IMAGE\nFROM ${BINDERY_BASE_IMAGE}\n",
        "README.md": "the canary: launched by every deploy's verification\n"})
    canary = f"git/{quote(canary_url, safe='')}/main"
    deploy_dir = tmp / "deploy"
    deploygit.ensure_repo(deploy_dir)
    for name in ("staging", "prod"):
        (deploy_dir / f"{name}.toml").write_text(_instance_toml(name, tmp / f"{name}-data", canary))
    assert instances.clashes(instances.load_all(deploy_dir)) == []
    deploygit.commit(deploy_dir, [deploy_dir / "staging.toml", deploy_dir / "prod.toml"], "staging and prod")
    store = FolderStore(tmp / "artifacts")
    store.put(Path(a.location), a.version, a.commit)  # the release job published A; B comes later
    w = World(deploy_dir, store, a, b, b_repo, instances.load(deploy_dir, "staging"),
              instances.load(deploy_dir, "prod"), timings)
    try:
        yield w
    finally:
        for name in ("staging", "prod"):
            LocalRuntime(w.config(name), deploy_dir).down()
        (ARTIFACTS / "deploy-timings.json").write_text(json.dumps(w.timings, indent=2) + "\n")


def _check(report: dict, name: str) -> dict:
    return next(c for c in report["checks"] if c["name"] == name)


@pytest.fixture(scope="module")
def staging_a(world: World) -> dict:
    """`bindery bump staging` → A; deploy it while its hub is down for the first canary attempt."""
    bumped = bindery("bump", "staging", "--deploy-dir", str(world.deploy_dir), "--store", str(world.store.root),
                     "--source-repo", str(world.b_repo))
    assert bumped.returncode == 0, bumped.stderr
    assert world.config("staging").version == world.a.version

    runtime = world.runtime("staging")
    settings = runtime.settings()
    outage: dict[str, float] = {}
    real_launch = probes.launch

    def launch_through_outage(client, base, spec, timeout):  # noqa: ANN001, ANN202
        if not outage:  # first canary attempt: the instance's hub is stopped for real
            outage["down"] = time.monotonic()
            assert stack_hub.stop(settings)
        try:
            return real_launch(client, base, spec, timeout)
        finally:
            if "down" in outage and "up" not in outage:  # bring it back after that attempt (as a restart would)
                stack_hub.start(settings, lambda m: None)
                outage["up"] = time.monotonic()

    t0 = time.monotonic()
    with pytest.MonkeyPatch.context() as mp, http_client() as client:
        mp.setattr(probes, "launch", launch_through_outage)
        report = world.deployer("staging", client=client).deploy()
    world.timings["deploy A to staging (first, with a hub outage)"] = round(time.monotonic() - t0, 1)
    if "up" in outage:
        world.timings["hub outage"] = round(outage["up"] - outage["down"], 1)
    return report.to_dict() | {"text": report.to_text()}


@pytest.fixture(scope="module")
def prod_a(world: World, staging_a: dict) -> dict:
    """`bindery promote staging prod --no-deploy`; prod's deploy starts before its artifact store has A."""
    promoted = bindery("promote", "staging", "prod", "--no-deploy", "--deploy-dir", str(world.deploy_dir),
                       "--store", str(world.store.root))
    assert promoted.returncode == 0, promoted.stderr
    assert world.config("prod").version == world.a.version
    late = FolderStore(world.deploy_dir.parent / "late-artifacts")
    waiting = threading.Event()
    messages: list[str] = []

    def say(message: str) -> None:
        messages.append(message)
        if message.startswith("waiting for bindery"):
            waiting.set()

    def publish() -> None:  # the release job finishes while the deploy waits
        if waiting.wait(60):
            late.put(Path(world.a.location), world.a.version, world.a.commit)

    publisher = threading.Thread(target=publish)
    publisher.start()
    t0 = time.monotonic()
    report = world.deployer("prod", store=late, artifact_timeout=60, say=say).deploy()
    world.timings["deploy A to prod (first)"] = round(time.monotonic() - t0, 1)
    publisher.join()
    return report.to_dict() | {"text": report.to_text(), "messages": messages}


def test_staging_a_green_through_a_transient_hub_outage(world: World, staging_a: dict) -> None:
    print(staging_a["text"])
    assert staging_a["verdict"] == "green", staging_a["text"]
    launch = _check(staging_a, "canary launch")
    assert launch["ok"] and len(launch["attempts"]) >= 2, staging_a["text"]
    first = launch["attempts"][0]
    assert first["kind"] == "transient" and not first["ok"], staging_a["text"]
    assert "#1 transient" in staging_a["text"]  # the retry is visible in the human report too
    assert [c["name"] for c in staging_a["checks"]] == [
        "artifact", "install", "stack", "start", "healthy", "version", "switch", "health", "versions",
        "canary launch", "open server", "stop server", "health after"]
    assert _check(staging_a, "open server")["detail"]["status"] == 200
    assert _check(staging_a, "versions")["detail"]["version"] == world.a.version
    with http_client() as client:
        assert client.get(world.staging.public_url + "/versions").json()["bindery"] == world.a.version


def test_prod_a_waits_for_its_artifact_then_proceeds(world: World, staging_a: dict, prod_a: dict) -> None:
    assert prod_a["verdict"] == "green", prod_a["text"]
    waited = next(m for m in prod_a["messages"] if m.startswith("waiting for bindery"))
    assert world.a.version in waited and "late-artifacts" in waited
    assert _check(prod_a, "artifact")["ok"] and _check(prod_a, "open server")["detail"]["status"] == 200
    # two stacks side by side: own hubs, own data
    assert _check(prod_a, "stack")["detail"]["data_dir"] != _check(staging_a, "stack")["detail"]["data_dir"]


class Poller(threading.Thread):
    """Polls prod's public /versions while the test runs; every answer is recorded."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.seen = url, threading.Event(), []

    def run(self) -> None:
        with httpx.Client(timeout=5, trust_env=False) as client:
            while not self.stop.is_set():
                try:
                    r = client.get(self.url)
                    self.seen.append((r.status_code, r.json().get("bindery")))
                except (httpx.HTTPError, ValueError) as exc:
                    self.seen.append((0, type(exc).__name__))
                self.stop.wait(0.25)


def test_broken_b_goes_red_rolls_back_and_is_not_promoted(world: World, staging_a: dict, prod_a: dict) -> None:
    assert staging_a["verdict"] == prod_a["verdict"] == "green"
    poller = Poller(world.prod.public_url + "/versions")
    poller.start()
    try:
        world.store.put(Path(world.b.location), world.b.version, world.b.commit)  # the release job publishes B
        bumped = bindery("bump", "staging", "--deploy-dir", str(world.deploy_dir), "--store", str(world.store.root),
                         "--source-repo", str(world.b_repo))
        assert bumped.returncode == 0, bumped.stderr
        assert world.config("staging").version == world.b.version
        log = subprocess.run(["git", "-C", str(world.deploy_dir), "log", "-1", "--format=%B"], capture_output=True,
                             text=True, check=True).stdout
        assert "ready as soon as the hub answers the start request" in log  # the commits between A and B

        # The canary image is not on staging's run side any more: the hub answers the start request with 202.
        image = _check(staging_a, "canary launch")["detail"]["ready"]["image"]
        podman.run(world.runtime("staging").settings(), "run", ["rmi", "-f", image], check=False, timeout=120)

        t0 = time.monotonic()
        deployed = bindery("deploy", "staging", "--json", "--deploy-dir", str(world.deploy_dir),
                           "--store", str(world.store.root))
        world.timings["deploy B to staging (red + rollback)"] = round(time.monotonic() - t0, 1)
        report = json.loads(deployed.stdout)
        text = json.dumps(report, indent=1)
        assert deployed.returncode == 1 and report["verdict"] == "red", text
        assert report["failure"]["kind"] == "real", text
        assert report["failure"]["check"] in ("canary launch", "open server"), text
        failed = _check(report, report["failure"]["check"])
        assert len(failed["attempts"]) == 1, text  # real: never retried
        rollback = report["rollback"]
        assert rollback["green"] and rollback["version"] == world.a.version, text
        assert _check(rollback, "open server")["detail"]["status"] == 200, text
        assert [c["name"] for c in rollback["checks"]][0] == "switch back"
        world.timings["rollback"] = _seconds(rollback)
        with http_client() as client:
            assert client.get(world.staging.public_url + "/versions").json()["bindery"] == world.a.version
        assert world.runtime("staging").live().version == world.a.version
        saved = sorted((world.deploy_dir / "state" / "staging" / "reports").glob("*-deploy.json"))
        assert saved and json.loads(saved[-1].read_text())["version"] == world.b.version

        promoted = bindery("promote", "staging", "prod", "--deploy-dir", str(world.deploy_dir),
                           "--store", str(world.store.root))
        assert promoted.returncode == 3, promoted.stdout + promoted.stderr
        assert "refusing to promote" in promoted.stderr and world.b.version in promoted.stderr
        assert "red" in promoted.stderr
        assert world.config("prod").version == world.a.version
    finally:
        poller.stop.set()
        poller.join()
    assert len(poller.seen) >= 20
    assert set(poller.seen) == {(200, world.a.version)}, poller.seen[:20]


def test_unreleased_version_fails_at_the_bound_naming_what_it_waited_for(world: World, staging_a: dict) -> None:
    never = "0.1.dev99999+gdeadbeefdead"
    path = instances.set_version(world.deploy_dir, "staging", never)
    deploygit.commit(world.deploy_dir, [path], f"staging: {never}")
    t0 = time.monotonic()
    report = world.deployer("staging", artifact_timeout=3).deploy()
    elapsed = time.monotonic() - t0
    assert not report.green and 3 <= elapsed < 30
    failure = report.first_failure
    assert failure.name == "artifact" and failure.kind == "real"
    reason = failure.attempts[-1].reason
    assert f"waiting for bindery {never} wheel in {world.store.location}" in reason
    assert "gave up at the bound" in reason and "newest there is" in reason
    with http_client() as client:  # nothing was touched: the live version still serves
        assert client.get(world.staging.public_url + "/versions").json()["bindery"] == world.a.version


def _seconds(report: dict) -> float:
    return round(sum(a["seconds"] for c in report["checks"] for a in c["attempts"]), 1)
