"""The embedded hub after a part of it died: a proxy it starts again gets bindery's pages of gone
servers back at once, and the idle culler a killed hub left running is found (and stopped when
the next hub starts)."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

from jupyterhub.proxy import ConfigurableHTTPProxy

from bindery import datadir
from bindery.settings import Settings
from bindery.stack import jupyterhub, process
from tests.unit.test_signin_units import hub_config


async def test_a_restarted_proxy_gets_bindery_pages_back_at_once(tmp_path, monkeypatch) -> None:
    """JupyterHub gives a proxy it started again only the hub's, servers' and services' routes;
    the hub config's proxy adds the extra ones (bindery's pages of gone servers) right then too."""
    values, c = hub_config(tmp_path)
    assert c.ConfigurableHTTPProxy.check_running_interval == jupyterhub.PROXY_CHECK_SECONDS
    added: list[tuple] = []

    async def jupyterhubs_own(self) -> None:
        added.append("hub, servers, services")

    class Probe(c.JupyterHub.proxy_class):
        async def add_route(self, routespec, target, data):
            added.append((routespec, target, data))

    monkeypatch.setattr(ConfigurableHTTPProxy, "restore_routes", jupyterhubs_own)
    probe = Probe(config=c, app=SimpleNamespace(subdomain_host=""))
    await probe.restore_routes()
    page = values["not_found_url"]
    assert added == ["hub, servers, services", ("/user/", page, {"extra": True}),
                     ("/", page, {"extra": True})]


def test_the_cullers_of_this_stacks_hub_are_found_by_their_hub(tmp_path) -> None:
    """What a killed hub leaves behind: its idle culler (a session of its own). The cullers of
    this stack's hub are told from another stack's by the hub API URL they were given."""
    settings = Settings(data_dir=tmp_path, hub_port=18990)
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "jupyterhub_idle_culler"]
    ours = subprocess.Popen(argv, env={"JUPYTERHUB_API_URL": datadir.hub_api(settings) + "/"},
                            start_new_session=True)
    theirs = subprocess.Popen(argv, env={"JUPYTERHUB_API_URL": "http://10.9.9.9:1/hub/api"},
                              start_new_session=True)
    try:
        assert ours.pid in jupyterhub.cullers(settings)
        assert theirs.pid not in jupyterhub.cullers(settings)
        process.stop_strays(jupyterhub.cullers(settings))
        assert ours.wait(10) is not None and theirs.poll() is None
    finally:
        for child in (ours, theirs):
            child.kill()
            child.wait(10)


def test_a_hub_started_again_mid_build_keeps_its_network(tmp_path, monkeypatch) -> None:
    """While a build runs, the build steps' bridge holds an address in the stack's own /24: a hub
    started again then (after a SIGKILL, or `bindery up`) keeps that /24, and so its address,
    which the running web service and the servers reach it at. (It took the next /24.)"""
    import ipaddress

    from bindery.stack import build_network, server_network

    settings = Settings(data_dir=tmp_path)
    mine = datadir.derived_server_network(settings.stack_id, 3)
    settings.server_subnet_file.parent.mkdir(parents=True, exist_ok=True)
    settings.server_subnet_file.write_text(f"{mine}\n")  # the /24 its first start chose
    build_gateway = build_network.bridge_network(settings).network_address + 1
    monkeypatch.setattr(server_network, "_existing_network", lambda s: None)
    monkeypatch.setattr(server_network, "host_addresses", lambda: [
        {"ifname": build_network.interface(settings), "local": str(build_gateway), "label": "",
         "network": ipaddress.IPv4Network(f"{build_gateway}/26", strict=False)},
        {"ifname": "bdyother", "local": "10.9.0.1", "label": "",
         "network": ipaddress.IPv4Network("10.9.0.0/25")}])
    assert server_network._choose(settings) == mine
    assert datadir.hub_address(settings) == datadir.hub_address_in(mine)
