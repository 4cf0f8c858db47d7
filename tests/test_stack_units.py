"""Pure units of bindery.stack (no processes started)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bindery import datadir
from bindery.settings import Settings
from bindery.stack import base_image, jupyterhub as hub, podman, process, registry_server as registry, web_service as web
from bindery.datadir import StackPaths, secret_file, write_if_changed


def make(tmp_path, **kw) -> Settings:
    kw.setdefault("cache_dir", tmp_path / "cache")
    return Settings(data_dir=tmp_path / "data", **kw)


def test_hub_public_follows_proxy_port(tmp_path):
    assert make(tmp_path, proxy_port=18123).hub_public == "http://127.0.0.1:18123"
    assert make(tmp_path, hub_url="http://hub.example/").hub_public == "http://hub.example"


def test_recipe_hash_is_stable_and_names_the_image(tmp_path):
    s = make(tmp_path, registry_port=15999)
    h = base_image.recipe_hash()
    assert h == base_image.recipe_hash() and len(h) == 12
    assert base_image.image_name(s) == f"127.0.0.1:15999/bindery/base:{h}"
    assert base_image.image_name(make(tmp_path, base_image="x/y:z")) == "x/y:z"
    assert base_image.recipe()["versions"]["JUPYTERHUB_VERSION"] == base_image.hub_version()


def test_debian_mirror_setting_wins(tmp_path):
    assert base_image.debian_mirror(make(tmp_path, debian_mirror="http://m/debian")) == (
        "http://m/debian"
    )
    assert base_image.debian_mirror(make(tmp_path)).startswith(("http://", "https://"))


def test_secret_file_is_private_and_stable(tmp_path):
    p = tmp_path / "s" / "token"
    value = secret_file(p)
    assert secret_file(p) == value and len(value) == 64
    assert oct(os.stat(p).st_mode & 0o777) == "0o600"
    assert write_if_changed(tmp_path / "f", "a") and not write_if_changed(tmp_path / "f", "a")


def test_podman_configs_are_per_side(tmp_path):
    s = make(tmp_path, registry_port=15998)
    paths = StackPaths.of(s)
    env_b = podman.write_configs(s, paths, "build")
    env_r = podman.write_configs(s, paths, "run")
    assert env_b["CONTAINERS_STORAGE_CONF"] != env_r["CONTAINERS_STORAGE_CONF"]
    conf = open(env_r["CONTAINERS_CONF"]).read()
    for needle in ('runtime = "runc"', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"',
                   "nofile=20000:20000", "nproc=32768:32768"):  # fmt: skip
        assert needle in conf
    assert "127.0.0.1:15998" in open(env_r["CONTAINERS_REGISTRIES_CONF"]).read()
    assert str(paths.store("run") / "root") in open(env_r["CONTAINERS_STORAGE_CONF"]).read()


def test_registry_config_has_delete_and_addr(tmp_path):
    s = make(tmp_path, registry_port=15997)
    text = open(registry.write_config(s, StackPaths.of(s), 15996)).read()
    assert '"127.0.0.1:15997"' in text and "enabled: true" in text
    assert '"http://127.0.0.1:15996/token"' in text  # every request needs a token of the issuer


def test_hub_config_compiles_with_scoped_services(tmp_path):
    s = make(tmp_path, hub_port=18999, proxy_port=18998, proxy_api_port=18997,
             hub_slow_spawn_timeout=1.5, server_pids_limit=333, server_subnet="10.250.3.0/24",
             server_tmp_size_mb=64)  # fmt: skip
    path, _ = hub.write_config(s)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    code = (
        "from traitlets.config import Config\nc = Config()\n"
        f"exec(open({str(path)!r}).read())\n"
        "from types import SimpleNamespace as S\n"
        "allowed = c.DockerSpawner.allowed_images\n"
        "images = {i: allowed(S(user_options={'image': i})) for i in ["
        f"{s.registry.host + '/bindery/x-1234abcd:ab'!r}, 'docker.io/someone/miner:latest', "
        f"{s.registry.host + '/other/x:1'!r}, {s.registry.host + '/bindery/../x:1'!r}]}}\n"
        "images['(none)'] = allowed(S(user_options={}))\n"
        "c.DockerSpawner.allowed_images = images\n"
        "import json; print(json.dumps({k: dict(v) for k, v in c.items()}, default=str))"
    )
    out = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    # The hub's API listens only at the hub address (upper half of server_subnet), not 0.0.0.0.
    assert datadir.hub_address(s) == "10.250.3.129" and datadir.hub_api(s) == "http://10.250.3.129:18999/hub/api"
    assert out["JupyterHub"]["hub_bind_url"] == "http://10.250.3.129:18999"
    assert out["Spawner"]["hub_connect_url"] == "http://10.250.3.129:18999"
    assert out["JupyterHub"]["bind_url"] == "http://127.0.0.1:18998/"
    assert out["JupyterHub"]["tornado_settings"] == {"slow_spawn_timeout": 1.5}
    assert out["JupyterHub"]["allow_named_servers"] is False
    assert out["DockerSpawner"]["extra_host_config"] == {
        "pids_limit": 333, "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"],
        "tmpfs": {"/tmp": "rw,nosuid,nodev,size=64m"}}
    assert out["DockerSpawner"]["network_name"] == f"bindery-{s.stack_id}"
    # The spawner that returns once its server answers, from the file beside the config.
    assert out["JupyterHub"]["spawner_class"] == "bindery_spawner.BinderySpawner"
    assert (path.parent / "bindery_spawner.py").read_text() == hub.SPAWNER_SOURCE.read_text()
    assert out["BinderySpawner"]["engine_threads"] == s.stack.hub_engine_threads
    assert out["DockerSpawner"]["client_kwargs"]["max_pool_size"] == s.stack.hub_engine_threads
    assert out["JupyterHub"]["concurrent_spawn_limit"] == s.stack.hub_concurrent_spawn_limit
    # Only bindery's own images (and the base image when none is asked for), whoever asks.
    own = s.registry.host + "/bindery/x-1234abcd:ab"
    assert out["DockerSpawner"]["allowed_images"] == {
        own: [own], "docker.io/someone/miner:latest": [], s.registry.host + "/other/x:1": [],
        s.registry.host + "/bindery/../x:1": [], "(none)": [out["DockerSpawner"]["image"]]}
    roles = {r["name"]: r for r in out["JupyterHub"]["load_roles"]}
    assert roles["bindery"]["scopes"] == hub.BINDERY_SCOPES
    assert "delete:servers" in roles["idle-culler"]["scopes"]
    token = next(x for x in out["JupyterHub"]["services"] if x["name"] == "bindery")["api_token"]
    assert token == (StackPaths.of(s).secrets / "hub-service-token").read_text().strip()


def test_web_env_round_trips(tmp_path, monkeypatch):
    s = make(tmp_path, port=18555, git_allowed_schemes=["https"])
    env = web.settings_env(s)
    assert env["BINDERY_PORT"] == "18555"
    for key in list(os.environ):
        if key.startswith("BINDERY_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert Settings().model_dump() == s.model_dump()


def test_process_start_stop(tmp_path):
    paths = StackPaths(tmp_path)
    flag = tmp_path / "flag"
    argv = [sys.executable, "-c", f"import time, pathlib; pathlib.Path({str(flag)!r}).touch(); "
            "time.sleep(60)"]  # fmt: skip
    info = process.start(paths, "sleeper", argv, ready=flag.exists, timeout=10, log=lambda m: None)
    assert info["started"] and process.read_pid(paths, "sleeper") == info["pid"]
    again = process.start(paths, "sleeper", argv, ready=flag.exists, timeout=10, log=lambda m: None)
    assert not again["started"] and again["pid"] == info["pid"]
    assert process.stop(paths, "sleeper")
    assert process.read_pid(paths, "sleeper") is None


def test_stopping_a_process_stops_what_it_started_in_sessions_of_its_own(tmp_path):
    """As JupyterHub starts its proxy and idle culler: a child in a session of its own is not in
    the process group, yet it must not outlive the stop."""
    paths = StackPaths(tmp_path)
    child_pid = tmp_path / "child.pid"
    argv = [sys.executable, "-c", "import os, pathlib, subprocess, sys, time; "
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], "
            "start_new_session=True); "
            f"pathlib.Path({str(child_pid)!r}).write_text(str(c.pid)); time.sleep(300)"]
    process.start(paths, "parent", argv, ready=child_pid.exists, timeout=10, log=lambda m: None)
    child = int(child_pid.read_text())
    assert os.getpgid(child) != process.read_pid(paths, "parent")  # not in the parent's group
    assert process.stop(paths, "parent", detached_children=True)
    try:
        os.waitpid(child, os.WNOHANG)  # not ours to reap; only look
    except ChildProcessError:
        pass
    stat = Path(f"/proc/{child}/stat")
    assert not stat.exists() or stat.read_text().split(") ")[1][:1] in ("Z", "X"), "child left running"


def test_an_orphan_bridge_of_a_killed_stack_is_removed():
    """A stack killed before `down` leaves its bridge and address; the next stack of that data_dir
    would be refused the subnet ("already used on the host") unless the orphan goes."""
    from bindery.stack import server_network

    name = f"bdyt{os.getpid() % 10**9:09d}"[:15]
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "10.199.254.1/25", "dev", name], check=True)
        server_network.drop_orphan_bridge(name)
        assert not Path(f"/sys/class/net/{name}").exists()
        assert "10.199.254.1" not in subprocess.run(["ip", "-br", "addr"], capture_output=True,
                                                    text=True).stdout
    finally:
        subprocess.run(["ip", "link", "delete", name], check=False, capture_output=True)


def test_process_start_reports_early_exit(tmp_path):
    paths = StackPaths(tmp_path)
    argv = [sys.executable, "-c", "print('boom'); raise SystemExit(3)"]
    try:
        process.start(paths, "bad", argv, ready=lambda: False, timeout=10, log=lambda m: None)
    except process.StackError as exc:
        assert "exited with code 3" in str(exc) and "boom" in str(exc)
        assert str(paths.log("bad")) in str(exc)
    else:
        raise AssertionError("expected StackError")
