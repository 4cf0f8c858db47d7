"""What issue 11's cached-launch and crowd changes must keep true, on the real stack.

- The embedded hub's spawner (bindery/stack/spawner.py) learns from the container's own log
  when its server listens, and a server whose container exits before answering fails the launch
  at once with what the container printed (not after the hub's http_timeout), leaving nothing.
- The embedded hub's database commits without waiting for the disk (write-ahead log).
- The hub adapter lists every user (past the hub's page limit) and shares one listing among the
  launches that ask at the same time.
- With start slots, a crowd's servers start a few at a time in order of arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sqlite3
import time

from bindery.datadir import StackPaths
from bindery.engine_clients import docker_client
from bindery.events import Event
from bindery.launches.launcher import LaunchConfig, Launcher
from bindery.stack import server_network
from bindery.stack.spawner import EngineLog
from tests.base_recipe import server_trims
from tests.builds.kernel import run_in_kernel
from tests.production.watch import remove_users
from tests.streams import bindery_users, collect, git_spec, open_server, phases

MARKER_AFTER = 1.5  # seconds the test container waits before it prints the marker


async def test_server_that_exits_at_start_fails_the_launch_at_once(stack, git_repo_factory, hub):
    """A server command that exits: `failed` with its own output, well before http_timeout."""
    script = "#!/bin/sh\\necho deliberate-start-failure-marker >&2\\nexit 3\\n"
    path, url = git_repo_factory(
        "exits-at-start", f"RUN printf '{script}' > /opt/venv/bin/jupyterhub-singleuser")
    started = time.monotonic()
    events = await collect(stack, "git", git_spec(url, "main"))
    assert phases(events)[-1] == "failed", events[-1]
    launched = next(i for i, e in enumerate(events) if e.phase == "built")
    took = time.monotonic() - started
    assert "deliberate-start-failure-marker" in events[-1].message, events[-1].message
    assert "stopped before it answered" in events[-1].message
    # Not the hub's wait for a server that never answers (stack default http_timeout: 120 s).
    assert took < stack.stack.hub_http_timeout / 2, (took, events[launched:])
    assert bindery_users(await hub.list_users(), url) == []


async def test_engine_log_says_when_the_server_listens_and_when_it_ends(stack, base_image):
    """The follower is woken by the line Jupyter prints once it listens, not before, and sees the
    container end (with its output kept for the failure message)."""
    client = docker_client(stack.run_socket, 30)
    script = (f"echo starting-up; sleep {MARKER_AFTER}; "
              "echo 'Jupyter Server 2 is running at:'; read forever")
    container = client.containers.run(
        base_image, ["sh", "-c", script], detach=True, stdin_open=True,
        network=server_network.network_name(stack), name=f"test-log-{secrets.token_hex(3)}")
    try:
        log = EngineLog(stack.run_socket, container.id)
        follower = asyncio.ensure_future(log.follow())
        started = time.monotonic()
        await asyncio.wait_for(log.active.wait(), 60)  # its first output: asks start now
        assert not log.running.is_set()
        await asyncio.wait_for(log.running.wait(), 60)
        assert time.monotonic() - started >= MARKER_AFTER * 0.8  # not before the line
        assert not log.ended.is_set()
        await asyncio.to_thread(container.kill)
        await asyncio.wait_for(log.ended.wait(), 60)
        assert "starting-up" in log.last_lines()
        await follower
    finally:
        await asyncio.to_thread(container.remove, force=True)
        client.close()


async def test_user_listing_pages_past_the_hub_limit_and_is_shared(stack, hub):
    """More users than one page (the hub's default page: 50): all listed; the active filter
    lists only users with a server; concurrent quota listings share one request."""
    names = [f"page-test-{i:03d}-{secrets.token_hex(2)}" for i in range(55)]
    response = await hub.client.post("/users", json={"usernames": names})
    assert response.status_code == 201, response.text
    try:
        listed = {u["name"] for u in await hub.list_users()}
        assert set(names) <= listed
        active = {u["name"] for u in await hub.list_users(state="active")}
        assert not active & set(names)  # none of them has a server
        results = await asyncio.gather(*(hub.active_users() for _ in range(5)))
        assert all(r is results[0] for r in results)  # one listing, one stamp, for all five
        again = await hub.active_users()  # a later caller asks anew
        assert again is not results[0] and again[0] >= results[0][0]
    finally:
        await asyncio.gather(*(hub.delete_user(n) for n in names))


async def test_hub_database_commits_without_waiting_for_the_disk(stack, hub):
    """The embedded hub's SQLite database is in write-ahead-log mode (hub_db_wal), and the hub
    works on it: a user it created is in the file, read by another connection."""
    name = f"wal-test-{secrets.token_hex(3)}"
    await hub.create_user(name)
    try:
        path = StackPaths.of(stack).hub / "jupyterhub.sqlite"
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:  # reads only
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            users = [row[0] for row in db.execute("SELECT name FROM users WHERE name = ?", (name,))]
    finally:
        await hub.delete_user(name)
    assert stack.stack.hub_db_wal is True
    assert mode == "wal"
    assert users == [name]


async def test_start_slots_start_a_crowd_in_order_of_arrival(stack, git_repo_factory, hub):
    """With one start slot, of two launches at once one starts, the other says it waits and
    touches the hub only once the first is ready; both end ready, and the slot is free after."""
    path, url = git_repo_factory("slots")
    warm = await collect(stack, "git", git_spec(url, "main"))  # build, pull: the image is cached
    assert phases(warm)[-1] == "ready", warm[-1]
    image = warm[-1].data()["image"]
    launcher = Launcher(hub, LaunchConfig(hub_url=stack.hub_public, timeout=300, retries=3,
                                          token_lifetime=600, start_slots=1))

    async def launch() -> list[tuple[float, Event]]:
        return [(time.monotonic(), e) async for e in launcher.launch(image, url)]

    try:
        runs = await asyncio.gather(launch(), launch())
        assert [r[-1][1].phase for r in runs] == ["ready", "ready"]
        waited = [r for r in runs if any("free start slot" in e.message for _, e in r)]
        assert len(waited) == 1, [[e.message for _, e in r] for r in runs]
        first = runs[0] if waited[0] is runs[1] else runs[1]
        after_waiting = waited[0][1][0]  # its first event after "waiting": the hub has its user
        assert after_waiting >= first[-1][0]
        assert not launcher.start_slots.locked()
        for r in runs:
            assert (await open_server(r[-1][1])).status_code == 200
    finally:
        await launcher.aclose()
        await remove_users(stack, url)  # every server of this repository, the warm one's too


async def test_base_image_server_starts_without_what_is_deferred(stack, base_image):
    """The base image's packages are edited at build (bindery/stack/base/server_trims.py): a server's
    start (the single-user extension, then a Jupyter server with its extensions) loads no SQLAlchemy,
    alembic or hub handlers, and none of jsonschema's iri grammars (rfc3987_syntax, lark)."""
    client = docker_client(stack.run_socket, 60)
    try:
        out = await asyncio.to_thread(
            client.containers.run, base_image, ["python", "-c", server_trims.CHECK],
            remove=True, network_disabled=True)
    finally:
        client.close()
    assert out.decode().strip() == ""


IRI_CHECKS = """
import json, sys, jsonschema
validator = jsonschema.Draft7Validator(
    {"type": "object", "properties": {"home": {"format": "iri"}, "link": {"format": "iri-reference"}}},
    format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
before = "rfc3987_syntax" in sys.modules
bad = sorted(e.message for e in validator.iter_errors({"home": "http://exa mple/", "link": "[::1"}))
good = validator.is_valid({"home": "https://例え.テスト/ü?q=1", "link": "../ü/x"})
print(json.dumps({"before": before, "after": "rfc3987_syntax" in sys.modules, "bad": bad,
                  "good": good}))
"""


async def test_deferred_iri_checks_work_in_a_launched_server(stack, git_repo_factory):
    """What the trims defer still works when called: a notebook's kernel in a server of the base
    image validates a schema with iri format checks, building the grammars on that first use."""
    _, url = git_repo_factory("iri-checks")
    try:
        events = await collect(stack, "git", git_spec(url, "main"))
        assert phases(events)[-1] == "ready", events[-1]
        data = events[-1].data()
        out = json.loads((await run_in_kernel(data["url"], data["token"], IRI_CHECKS)).strip())
    finally:
        await remove_users(stack, url)
    assert out == {"before": False, "after": True, "good": True,
                   "bad": ["'[::1' is not a 'iri-reference'", "'http://exa mple/' is not a 'iri'"]}
