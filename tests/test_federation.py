"""`bindery federate` in front of two real bindery stacks (the session's, as the prime, and one of its
own with a small quota), run as a person runs it: members join the rotation, a member on another
version stays out, launches follow rendezvous on the repository, a member near its quota leaves and
comes back, the sticky cookie and the repository's last member are honoured, and a member whose launch
fails mid-way leaves at once. The member on another version is a stand-in (a real stack's version
cannot be changed under it); everything else is real.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from bindery.federation.rendezvous import rank, repository_key
from bindery.web.commands import stream_events
from tests.asgi_thread import serve_in_thread
from tests.conftest import free_port
from tests.production.own_stack import dedicated_stack, release, repo, wait_for

CHECK = {"period": 0.5, "failed_period": 1, "timeout": 3, "retries": 1}


def other_version() -> Starlette:
    return Starlette(routes=[
        Route("/versions", lambda r: JSONResponse({"binderhub": "0.0.1", "builder_info": {}})),
        Route("/health", lambda r: JSONResponse({"ok": True, "checks": []}))])


@pytest.fixture(scope="module")
def federation(stack, tmp_path_factory, git_server):
    with dedicated_stack(tmp_path_factory.mktemp("member-b"), git_server.base_url,
                         max_servers=2) as b, serve_in_thread(other_version(), "c") as c:
        config = tmp_path_factory.mktemp("federation") / "federation.json"
        config.write_text(json.dumps({
            "hosts": {"a": {"url": stack.service.web_url, "weight": 1, "prime": True},
                      "b": {"url": b.service.web_url, "weight": 1},
                      "c": {"url": c, "weight": 1}},
            "check": CHECK, "pod_headroom": 1}))
        port = free_port()
        front = subprocess.Popen([sys.executable, "-m", "bindery", "federate", str(config),
                                  "--port", str(port)], stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:  # bounded: the front checks every member before it listens
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code in (200, 503):
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or front.poll() is not None:
                    raise AssertionError(f"bindery federate did not start: {front.stderr.read()}")
                time.sleep(0.2)
            yield url, stack, b
        finally:
            front.terminate()
            front.wait(30)


def rotation(url: str) -> dict[str, dict]:
    return {m["name"]: m for m in httpx.get(f"{url}/health", timeout=10).json()["members"]}


def route(url: str, path: str, cookies: dict | None = None) -> tuple[str, str]:
    """(member, reason) the front picks for a launch URL (a ref that does not exist: no launch)."""
    with httpx.stream("GET", f"{url}/build/gh/{path}/no-such-ref", cookies=cookies,
                      timeout=30) as r:
        return r.headers["x-binder-member"], r.headers["x-binder-route"]


def repo_ranked(git_server, name: str, first: str, dockerfile: str = "") -> tuple[str, str]:
    """A new repository whose rendezvous choice between a and b is `first`."""
    for _ in range(64):
        path, url = repo(git_server, name, dockerfile)
        if rank(repository_key(f"/build/gh/{path}/main"), {"a": 1, "b": 1})[0] == first:
            return path, url
    raise AssertionError("no repository name ranked as wanted")


async def launch(url: str, settings, path: str) -> list:
    via = settings.model_copy(update={"public_url": url})  # the front's address
    return [e async for e in stream_events(via, "gh", f"{path}/main")]


async def test_versions_and_health_decide_the_rotation(federation):
    url, a, _ = federation
    members = await wait_for(lambda: (lambda m: m if m["a"]["in_rotation"]
                                      and m["b"]["in_rotation"] else None)(rotation(url)),
                             60, "a and b in rotation")
    assert not members["c"]["in_rotation"] and "versions" in members["c"]["reason"]
    assert httpx.get(f"{url}/versions", timeout=10).json() == \
        httpx.get(a.service.web_url + "versions", timeout=10).json()


async def test_rendezvous_quota_cookie_and_cache(federation, git_server):
    url, a, b = federation
    await wait_for(lambda: rotation(url)["b"]["in_rotation"], 60, "b in rotation")
    path, _ = repo_ranked(git_server, "fed", "b")
    assert route(url, path) == ("b", "rendezvous")
    events = await launch(url, a, path)
    assert events[-1].phase == "ready", events[-1]
    assert events[-1].data()["url"].startswith(b.hub_public)  # launched on b
    # b's one server is within the headroom (1) of its quota (2): out of rotation, launches of
    # its repositories go to a meanwhile, whatever the cookie says.
    out = await wait_for(lambda: (lambda m: m if not m["b"]["in_rotation"] else None)(
        rotation(url)), 30, "b out near its quota")
    assert "quota" in out["b"]["reason"]
    assert route(url, path) == ("a", "rendezvous")
    assert route(url, path, cookies={"binder-member": "b"}) == ("a", "rendezvous")
    await release(b, events[-1])
    await wait_for(lambda: rotation(url)["b"]["in_rotation"], 30, "b back in rotation")
    # Back: its repository's image is on b (the last launch), and the cookie is honoured.
    assert route(url, path) == ("b", "cache")
    assert route(url, path, cookies={"binder-member": "a"}) == ("a", "cookie")


async def test_a_launch_failing_mid_way_takes_its_member_out_at_once(federation, git_server):
    url, a, _ = federation
    await wait_for(lambda: rotation(url)["b"]["in_rotation"], 60, "b in rotation")
    path, _ = repo_ranked(git_server, "fedbroken", "b", 'ENTRYPOINT ["/bin/false"]')
    events = await launch(url, a, path)
    assert events[-1].phase == "failed", events[-1]
    members = rotation(url)  # no wait: taken out as the failure passed through
    assert not members["b"]["in_rotation"] and "mid-way" in members["b"]["reason"]
    assert route(url, path) == ("a", "rendezvous")
    # Its next check finds it healthy again.
    await wait_for(lambda: rotation(url)["b"]["in_rotation"], 30, "b back after its next check")
