"""The event stream survives networks: resume with Last-Event-ID; expired links explain themselves."""

from __future__ import annotations

import httpx

from bindery import datadir
from bindery.event_stream import amessages
from bindery.events import Event
from bindery.launches.hub_api import Hub
from tests.streams import bindery_users, git_spec, manifest_pushes


async def read_events(response: httpx.Response, until) -> list[tuple[str, Event]]:
    out: list[tuple[str, Event]] = []
    async for message in amessages(response.aiter_lines()):
        event = Event.model_validate_json(message.data)
        out.append((message.id or "", event))
        if until(event):
            break
    return out


async def test_reconnect_mid_build_resumes_one_build_and_one_launch(stack, git_repo_factory):
    # A build step that takes a few seconds, so the stream is dropped while it runs.
    path, url = git_repo_factory("resume", "RUN for i in 1 2 3 4 5 6; do echo step-$i; sleep 1; done")
    build_url = f"{stack.service.web_url}build/git/{git_spec(url, 'main')}"
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=120)) as client:
        async with client.stream("GET", build_url) as response:
            first = await read_events(response, lambda e: "step-2" in e.message)
        # The connection is gone mid-build. Reconnect as EventSource does.
        last_id = first[-1][0]
        assert last_id
        async with client.stream("GET", build_url, headers={"Last-Event-ID": last_id}) as response:
            rest = await read_events(response, lambda e: e.terminal)
    session, _, index = last_id.rpartition(".")
    ids = [i for i, _ in rest]
    assert all(i.rpartition(".")[0] == session for i in ids)  # the same launch, resumed
    assert int(ids[0].rpartition(".")[2]) == int(index) + 1  # from exactly where it was
    ready = rest[-1][1]
    assert ready.phase == "ready", ready
    messages = "".join(e.message for _, e in first + rest)
    assert messages.count("step-6") == 1
    # One build (the registry saw one push) and one launch (one hub user for this repository).
    assert manifest_pushes(stack, ready.data()["image"]) == 1
    hub = Hub(datadir.hub_api(stack), datadir.hub_token(stack), 10)
    try:
        assert len(bindery_users(await hub.list_users(), url)) == 1
    finally:
        await hub.aclose()


async def test_expired_server_link_answers_424_with_a_relaunch_offer(stack, git_repo_factory):
    from tests.streams import collect

    path, url = git_repo_factory("expired")
    spec = git_spec(url, "main")
    events = await collect(stack, "git", spec)
    ready = events[-1].data()
    assert events[-1].phase == "ready"
    hub = Hub(datadir.hub_api(stack), datadir.hub_token(stack), 10)
    try:
        await hub.stop_server(ready["user"])
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(100):  # bounded: the user goes once its server has stopped
                if await hub.delete_user(ready["user"]):
                    break
            response = await client.get(f"{ready['url']}tree", params={"token": ready["token"]},
                                        headers={"Accept": "text/html"})
    finally:
        await hub.aclose()
    assert response.status_code == 424
    assert "Binder not found" in response.text
    assert f"v2/git/{spec}" in response.text  # offers to launch the same repository again
