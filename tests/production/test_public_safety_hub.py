"""Safe to put on the public internet, hub & container half (issue 8, points 1, 4, 7), attacked
the way an attacker would, on the session's real stack:

- the token of a `ready` event, used against the hub's API through the PUBLIC proxy URL;
- ten concurrent launches of one ref against a quota of one (per repository, and in total);
- a launched container (exec'd as its own user) reaching for the hub's admin API, the registry,
  the proxy's API and a private listener, and looking at its own capabilities.

Each probe prints what it got, for the issue's closing table.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator

import docker
import httpx
import pytest

from bindery import datadir
from bindery.settings import Settings
from bindery.stack import server_network
from bindery.datadir import StackPaths
from bindery.stack.podman import STACK_LABEL
from bindery.engine_clients import docker_client
from tests.production.own_stack import release, wait_for
from tests.production.watch import dumps, remove_users, users_of, watch
from tests.streams import collect, git_spec, open_server


def log(what: str, got: object) -> None:
    print(f"\n[public-safety] {what} -> {got}")


@pytest.fixture(scope="module")
async def launched(stack: Settings, git_server):
    """One launched server of the session stack: its ready event."""
    _, url = git_server.create("safety", {"Dockerfile": "ARG BINDERY_BASE_IMAGE\n"
                                                        "FROM ${BINDERY_BASE_IMAGE}\n"})
    events = await collect(stack, "git", git_spec(url, "main"))
    assert events[-1].phase == "ready", events[-1]
    yield events[-1]
    await release(stack, events[-1])


# -- point 1: the person's token opens their own server and nothing else ---------------------------

async def test_ready_token_opens_its_own_server_and_nothing_else(stack, launched):
    ready = launched.data()
    user, token = ready["user"], ready["token"]
    public = stack.hub_public + "/hub/api"
    async with httpx.AsyncClient(headers={"Authorization": f"token {token}"}, timeout=20) as hub:
        # What the token is for: its own server answers, through the public proxy.
        assert (await hub.get(f"{ready['url']}api")).status_code == 200
        attacks = {
            "start a named server": ("POST", f"/users/{user}/servers/x1",
                                     {"image": "docker.io/someone/miner:latest"}),
            "start the default server again": ("POST", f"/users/{user}/server", {}),
            "mint a token": ("POST", f"/users/{user}/tokens", {"expires_in": 3600}),
            "change its own user": ("PATCH", f"/users/{user}", {"admin": True}),
            "list users": ("GET", "/users", None),
            "create a user": ("POST", "/users/b-intruder-1", None),
            "stop its own server": ("DELETE", f"/users/{user}/server", None),
        }
        got = {}
        for what, (method, path, body) in attacks.items():
            response = await hub.request(method, public + path, json=body)
            got[what] = response.status_code
        # JupyterHub gives every token its owner's identity (name, groups: what the server needs
        # to know who is asking); nothing more of the user model shows.
        me = await hub.get(f"{public}/users/{user}")
        got["read its own user"] = (me.status_code, sorted(me.json()))
        log("ready token through the public proxy", got)
        status, fields = got.pop("read its own user")
        assert status == 200 and set(fields) <= {"admin", "groups", "kind", "name", "user_info"}, \
            fields  # no servers, roles, activity or tokens
        assert got == {what: 403 for what in attacks}, got
    # The token expires, and the server it opens still runs (the stop attempt was refused).
    assert (await open_server(launched)).status_code == 200
    async with httpx.AsyncClient(headers={"Authorization": f"token {datadir.hub_token(stack)}"},
                                 timeout=20) as admin:
        tokens = (await admin.get(f"{datadir.hub_api(stack)}/users/{user}/tokens")).json()["api_tokens"]
        minted = [t for t in tokens if t.get("note") == "bindery launch"]
        assert minted and all(t["expires_at"] for t in minted), tokens
        log("the person's token as the hub lists it",
            [(t["note"], t["scopes"], t["expires_at"]) for t in minted])
        identity = {f"read:users:name!user={user}", f"read:users:groups!user={user}"}
        assert all(set(t["scopes"]) <= {f"access:servers!server={user}/", *identity}
                   for t in minted), tokens


async def test_hub_starts_only_images_of_binderys_registry_whoever_asks(stack, launched):
    """Even bindery's own service token cannot make the hub start an image from elsewhere."""
    ready = launched.data()
    foreign = "docker.io/someone/miner:latest"
    async with httpx.AsyncClient(headers={"Authorization": f"token {datadir.hub_token(stack)}"},
                                 timeout=60) as admin:
        name = "b-00000000-foreign"
        assert (await admin.post(f"{datadir.hub_api(stack)}/users/{name}")).status_code == 201
        try:
            response = await admin.post(f"{datadir.hub_api(stack)}/users/{name}/server",
                                        json={"image": foreign})
            log("service token starts a foreign image", (response.status_code, response.text[:200]))
            assert response.status_code in (400, 403), response.text
            assert "image" in response.text.lower()
            # Named servers are off for everyone, the service included.
            named = await admin.post(f"{datadir.hub_api(stack)}/users/{name}/servers/x1",
                                     json={"image": ready["image"]})
            log("service token starts a named server", named.status_code)
            assert named.status_code == 400, named.text
        finally:
            await admin.delete(f"{datadir.hub_api(stack)}/users/{name}")


# -- point 4: quotas are atomic ----------------------------------------------------------------

async def crowd(service, url: str, n: int = 10):
    spec = git_spec(url, "main")
    return await asyncio.wait_for(asyncio.gather(*(watch(service.url, "git", spec)
                                                   for _ in range(n))), 600)


def outcome(watches) -> dict[str, int]:
    counts: dict[str, int] = {}
    for w in watches:
        key = w.last.phase + (f" {w.last.data().get('status_code')}" if w.last.phase == "failed"
                              else "")
        counts[key] = counts.get(key, 0) + 1
    return counts


async def test_ten_concurrent_launches_against_a_per_repo_quota_of_one(service_with, git_server):
    _, url = git_server.create("quota-race", {"Dockerfile": "ARG BINDERY_BASE_IMAGE\n"
                                                            "FROM ${BINDERY_BASE_IMAGE}\n"})
    service = service_with(max_servers_per_repo=1)
    try:
        watches = await crowd(service, url)
        log("10 concurrent launches, max_servers_per_repo=1", outcome(watches))
        assert outcome(watches) == {"ready": 1, "failed 429": 9}, [dumps(w) for w in watches]
        refused = [w for w in watches if w.last.phase == "failed"]
        assert all("its limit is 1" in w.last.message for w in refused), refused[0].last.message
        assert len([u for u in await users_of(service.settings, url) if u.get("servers")]) == 1
        # The refusals held nothing: once the server stops, the next launch gets through.
        await remove_users(service.settings, url)
        again = await asyncio.wait_for(watch(service.url, "git", git_spec(url, "main")), 300)
        assert again.last.phase == "ready", dumps(again)
    finally:
        await remove_users(service.settings, url)


async def test_ten_concurrent_launches_against_the_total_quota(stack, service_with, git_server):
    _, url = git_server.create("quota-race-total", {"Dockerfile": "ARG BINDERY_BASE_IMAGE\n"
                                                                  "FROM ${BINDERY_BASE_IMAGE}\n"})
    active = [u for u in await users_of(stack) if u.get("servers")]  # what runs now
    service = service_with(max_servers=len(active) + 1)
    try:
        watches = await crowd(service, url)
        log("10 concurrent launches, one server left in max_servers", outcome(watches))
        assert outcome(watches) == {"ready": 1, "failed 429": 9}, [dumps(w) for w in watches]
        refused = [w for w in watches if w.last.phase == "failed"]
        assert all(w.last.message.startswith("This Binder is running as many servers as it can")
                   for w in refused), refused[0].last.message
    finally:
        await remove_users(service.settings, url)


# -- point 7: containers hold less ---------------------------------------------------------------

class CountingListener:
    """A TCP listener on the host that counts the connections it accepts."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join(5)
        self.sock.close()


class PrivateHost:
    """Another machine on the operator's private network: a network namespace behind a veth pair
    (172.31.251.2, routed from the host), with a listener that counts what it accepts."""

    ADDRESS, HOST_SIDE = "172.31.251.2", "172.31.251.1/30"
    COUNTER = ("import socket, sys\ns = socket.create_server(('0.0.0.0', 8080))\n"
               "print('listening', flush=True)\n"
               "while True:\n    c, a = s.accept(); print('accepted', a[0], flush=True); c.close()\n")

    def __init__(self, name: str) -> None:
        self.ns, self.veth = name, f"{name}h"
        self.port = 8080
        steps = [["ip", "netns", "add", self.ns],
                 ["ip", "link", "add", self.veth, "type", "veth", "peer", "name", f"{name}n"],
                 ["ip", "link", "set", f"{name}n", "netns", self.ns],
                 ["ip", "addr", "add", self.HOST_SIDE, "dev", self.veth],
                 ["ip", "link", "set", self.veth, "up"],
                 self.inside("ip", "addr", "add", f"{self.ADDRESS}/30", "dev", f"{name}n"),
                 self.inside("ip", "link", "set", f"{name}n", "up"),
                 self.inside("ip", "link", "set", "lo", "up")]
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, timeout=30)
        self.proc = subprocess.Popen(self.inside("python3", "-c", self.COUNTER),
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "listening"
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout),
                                       daemon=True)
        self.reader.start()

    def inside(self, *argv: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.ns}", *argv]

    def accepted_from(self) -> list[str]:
        return [line.split()[1] for line in list(self.lines) if line.startswith("accepted")]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        subprocess.run(["ip", "link", "del", self.veth], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=30)


@pytest.fixture
def private_host() -> Iterator[PrivateHost]:
    host = PrivateHost(f"bdyt{uuid.uuid4().hex[:6]}")
    try:
        yield host
    finally:
        host.close()


@pytest.fixture
def host_listener() -> Iterator[CountingListener]:
    listener = CountingListener("0.0.0.0")  # a host service bound on every interface
    try:
        yield listener
    finally:
        listener.close()


def host_addresses() -> list[str]:
    return [a["local"] for a in server_network.host_addresses() if not a["local"].startswith("127.")]


def resolvable() -> str:
    """A name this machine's resolver answers (the servers' DNS goes through it)."""
    for name in ("pypi.org", "deb.debian.org", "registry.npmjs.org"):
        try:
            socket.getaddrinfo(name, 443)
            return name
        except OSError:
            continue
    pytest.fail("no public name resolves on this machine")


PROBE = r"""
import json, socket, sys, time, urllib.request, urllib.error
out = {}
for name, host, port in json.loads(sys.argv[1]):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, port)); out[name] = "open"
    except OSError as exc:
        out[name] = type(exc).__name__
    finally:
        s.close()
for name, method, url, token in json.loads(sys.argv[2]):
    req = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None,
                                 headers={"Authorization": "token " + token} if token else {})
    try:
        out[name] = urllib.request.urlopen(req, timeout=5).status
    except urllib.error.HTTPError as exc:
        out[name] = exc.code
    except OSError as exc:
        out[name] = type(exc).__name__
# DNS through the gateway stays open (notebooks may fetch from the internet). Asked up to three
# times, as resolvers are: the machine's one aardvark-dns serves every engine's networks and
# reloads whenever any of them changes, which can drop one query (seen once in a full run).
for attempt in range(3):
    try:
        out["dns (kept)"] = len(socket.getaddrinfo(sys.argv[3], 443)) > 0
        break
    except OSError as exc:
        out["dns (kept)"] = type(exc).__name__
        time.sleep(1)
print(json.dumps(out))
"""


def server_container(settings: Settings, user: str):
    client = docker_client(settings.run_socket, 30)
    stack_id = StackPaths.of(settings).stack_id
    for container in client.containers.list(filters={"label": f"{STACK_LABEL}={stack_id}"}):
        if f"JUPYTERHUB_USER={user}" in container.attrs["Config"]["Env"]:
            return client, container
    client.close()
    raise AssertionError(f"no running container for {user}")


async def test_launched_container_cannot_reach_admin_surfaces_or_private_networks(
        stack, launched, host_listener, private_host):
    user = launched.data()["user"]
    client, container = server_container(stack, user)
    try:
        env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
        api, own = env["JUPYTERHUB_API_URL"].rstrip("/"), env["JUPYTERHUB_API_TOKEN"]
        gateway = next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["Gateway"]
        targets = sorted({gateway, *host_addresses()})
        sockets = [[f"{what} at {host}", host, port] for host in targets for what, port in (
            ("registry", stack.registry.registry_port), ("proxy API", stack.stack.proxy_api_port),
            ("public proxy", stack.stack.proxy_port), ("bindery web", stack.service.port),
            ("private listener", host_listener.port))]
        sockets.append(["another machine of the private network", private_host.ADDRESS,
                        private_host.port])
        sockets.append(["cloud metadata", "169.254.169.254", 80])
        requests = [
            ["hub API version (needed)", "GET", f"{api}/", ""],
            ["hub users, no token", "GET", f"{api}/users", ""],
            ["hub users, own token", "GET", f"{api}/users", own],
            ["mint a token, own token", "POST", f"{api}/users/{user}/tokens", own],
            ["start a named server, own token", "POST", f"{api}/users/{user}/servers/x1", own],
            ["hub users, as a service (no token)", "GET", f"{api}/services", ""],
        ]
        result = await asyncio.to_thread(
            container.exec_run, ["python3", "-c", PROBE, json.dumps(sockets), json.dumps(requests),
                                 resolvable()],
            user=container.attrs["Config"]["User"] or "1000")
        assert result.exit_code == 0, result.output
        got = json.loads(result.output.decode().strip().splitlines()[-1])
        log("from inside a launched container", got)
        assert got.pop("hub API version (needed)") == 200
        assert got.pop("dns (kept)") is True
        assert not [k for k, v in got.items() if v == "open"], got
        assert all(v == 403 for k, v in got.items() if k.startswith("hub ") or ", own" in k), got
        assert host_listener.accepted == 0
        # The private machine is there (the host reaches it), only the servers are kept away.
        with socket.create_connection((private_host.ADDRESS, private_host.port), timeout=5):
            pass
        await wait_for(lambda: private_host.accepted_from(), 10, "the host's probe accepted")
        assert private_host.accepted_from() == ["172.31.251.1"], private_host.accepted_from()
        status = await asyncio.to_thread(container.exec_run, ["cat", "/proc/1/status"])
        fields = dict(line.split(":", 1) for line in status.output.decode().splitlines()
                      if ":" in line)
        log("PID 1 of a launched container", {k: fields[k].strip() for k in
                                               ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs")})
        assert int(fields["CapEff"], 16) == 0 and int(fields["CapBnd"], 16) == 0
        assert fields["NoNewPrivs"].strip() == "1"
    finally:
        client.close()
    # The server itself still works (its own hub calls and the proxy route).
    assert (await open_server(launched)).status_code == 200


async def test_launched_container_writes_are_bounded(stack, launched):
    user = launched.data()["user"]
    client, container = server_container(stack, user)
    try:
        fill = ("import os\nn = 0\ntry:\n    with open('/tmp/fill', 'wb') as f:\n"
                "        while n < 4096:\n            f.write(b'x' * (1 << 20)); f.flush(); n += 1\n"
                "except OSError as exc:\n    print('stopped', n, exc.errno)\n"
                "os.remove('/tmp/fill')\n")
        result = await asyncio.to_thread(container.exec_run, ["python3", "-c", fill],
                                         user=container.attrs["Config"]["User"] or "1000")
        log("writing 4 GiB into /tmp", result.output.decode().strip())
        written = int(result.output.split()[1])
        assert result.output.startswith(b"stopped") and written <= stack.launches.server_tmp_size_mb + 1
    finally:
        client.close()
    assert (await open_server(launched)).status_code == 200


def test_egress_rules_install_and_remove_idempotently(stack, tmp_path):
    """What `bindery up`/`down` do to the host (a second hub's worth, on the session's engine):
    twice in a row changes nothing, removal leaves nothing, and other stacks' rules stay."""

    other = stack.model_copy(update={"data_dir": tmp_path, "run_docker_host": stack.run_socket})

    def state() -> tuple[int, int, bool, bool]:
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                                check=True).stdout.split()
        addrs = subprocess.run(["ip", "-4", "addr", "show", "dev", "lo"], capture_output=True,
                               text=True, check=True).stdout
        client = docker_client(stack.run_socket, 30)
        try:
            net = bool(client.networks.list(names=[server_network.network_name(other)]))
        finally:
            client.close()
        return (tables.count(server_network.table(other)),
                addrs.count(f"inet {datadir.hub_address(other)}/32"), net,
                server_network.table(stack) in tables)

    assert state() == (0, 0, False, True)
    try:
        server_network.install(other, log=lambda line: None)
        assert state() == (1, 1, True, True)
        server_network.install(other, log=lambda line: None)
        assert state() == (1, 1, True, True)
    finally:
        server_network.remove(other, log=lambda line: None)
    assert state() == (0, 0, False, True)
    server_network.remove(other, log=lambda line: None)
    assert state() == (0, 0, False, True)


def _same_first_choice(root) -> tuple[Settings, Settings]:
    """Two data_dirs whose first-choice /24 for servers is the same (a hash collision, found),
    and free on this machine (other stacks of the test run hold theirs)."""
    from bindery.datadir import derived_server_network, stack_id_of

    used = [a["network"] for a in server_network.host_addresses()]
    seen: dict = {}
    for i in range(20000):
        folder = root / f"d{i}"
        first = derived_server_network(stack_id_of(folder.absolute()))
        if any(first.overlaps(net) for net in used):
            continue
        if first in seen:
            return seen[first], folder
        seen[first] = folder
    raise AssertionError("no two data_dirs with the same first choice in 20000")


def test_stacks_whose_first_choice_collides_get_different_networks(stack, tmp_path):
    """Two stacks that hash to the same /24 (staging and prod did, in one CI run: the second
    stack's network 'is already used on the host'): the second takes the next free one, each
    keeps its own across restarts, and taking one down never touches the other's address."""
    from bindery.datadir import derived_server_network

    first, second = (stack.model_copy(update={"data_dir": d, "run_docker_host": stack.run_socket})
                     for d in _same_first_choice(tmp_path))
    assert derived_server_network(first.stack_id) == derived_server_network(second.stack_id)
    quiet = lambda line: None  # noqa: E731

    def on_lo() -> str:
        return subprocess.run(["ip", "-4", "addr", "show", "dev", "lo"], capture_output=True,
                              text=True, check=True).stdout

    try:
        server_network.install(first, log=quiet)
        server_network.install(second, log=quiet)
        assert datadir.server_network(first) == derived_server_network(first.stack_id)
        assert datadir.server_network(second) != datadir.server_network(first)
        assert not datadir.server_network(second).overlaps(datadir.server_network(first))
        assert datadir.hub_address(second) != datadir.hub_address(first)
        for s in (first, second):
            assert f"inet {datadir.hub_address(s)}/32 scope global {server_network.address_label(s)}" \
                in on_lo(), on_lo()
        # A restart (install again) keeps each one's own /24 and makes nothing twice.
        chosen = (datadir.server_network(first), datadir.server_network(second))
        server_network.install(second, log=quiet)
        server_network.install(first, log=quiet)
        assert (datadir.server_network(first), datadir.server_network(second)) == chosen
        assert on_lo().count(f"inet {datadir.hub_address(second)}/32") == 1
        # The first one down: the second's address and network stay.
        server_network.remove(first, log=quiet)
        assert f"inet {datadir.hub_address(first)}/32" not in on_lo()
        assert f"inet {datadir.hub_address(second)}/32" in on_lo()
        assert server_network.has_address(second)
    finally:
        server_network.remove(first, log=quiet)
        server_network.remove(second, log=quiet)
    assert f"inet {datadir.hub_address(second)}/32" not in on_lo()


def test_a_stack_started_before_subnets_were_recorded_keeps_its_own(stack, tmp_path):
    """A running stack of an earlier bindery (its network made, its hub address on lo without a
    label, no recorded choice) is upgraded in place by `bindery up`: its own address is not
    mistaken for another stack's, so it keeps its /24 instead of failing on its busy network."""
    from bindery.datadir import derived_server_network

    old = stack.model_copy(update={"data_dir": tmp_path / "old", "run_docker_host": stack.run_socket})
    first = derived_server_network(old.stack_id)
    assert not old.server_subnet_file.exists() and datadir.server_network(old) == first
    client = docker_client(stack.run_socket, 30)
    try:
        pool = docker.types.IPAMPool(subnet=str(server_network.bridge_network(old)),
                                     gateway=server_network.gateway(old))
        client.networks.create(server_network.network_name(old), driver="bridge",
                               ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                               options={"com.docker.network.bridge.name":
                                        server_network.interface(old)})
        subprocess.run(["ip", "addr", "add", f"{datadir.hub_address(old)}/32", "dev", "lo"], check=True)
        server_network.install(old, log=lambda line: None)
        assert datadir.server_network(old) == first
        assert old.server_subnet_file.read_text().strip() == str(first)
    finally:
        server_network.remove(old, log=lambda line: None)
        client.close()
    assert not server_network.has_address(old)
