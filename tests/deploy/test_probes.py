"""Probe verdicts that decide whether a deploy is retried or red: a hub that did not answer is transient; a `ready`
whose URL does not reach the server (hub page, 503) is real — that is the founding launcher bug, never retried."""

from __future__ import annotations

import json

import httpx
import pytest

from bindery.deploy import probes
from bindery.deploy.classify import CheckFailed, Kind

READY = {"phase": "ready", "url": "http://hub:8000/user/canary-1/", "token": "tok"}


def client(handler) -> httpx.Client:  # noqa: ANN001
    return httpx.Client(transport=httpx.MockTransport(handler))


def stream(*events: dict) -> httpx.Response:
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


@pytest.mark.parametrize(("event", "kind"), [
    ({"phase": "failed", "message": "JupyterHub is not answering", "status_code": 503}, Kind.TRANSIENT),
    ({"phase": "failed", "message": "The server failed to start"}, Kind.REAL),
    ({"phase": "failed", "message": "too many servers", "status_code": 429}, Kind.REAL),
])
def test_failed_launch_events(event: dict, kind: Kind) -> None:
    with client(lambda r: stream({"phase": "waiting", "message": ""}, event)) as c, \
            pytest.raises(CheckFailed) as info:
        probes.launch(c, "http://b", "git/x/main", 10)
    assert info.value.kind is kind and info.value.evidence["phases"] == ["waiting", "failed"]


def test_open_server_that_lands_on_a_hub_page_is_real() -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path == "/user/canary-1/":
            return httpx.Response(302, headers={"location": "/hub/spawn-pending/canary-1"})
        return httpx.Response(200, text="<html>your server is starting</html>")

    with client(handler) as c, pytest.raises(CheckFailed) as info:
        probes.open_server(c, READY)
    assert info.value.kind is Kind.REAL and "/hub/spawn-pending/canary-1" in info.value.reason
    assert info.value.evidence["redirects"] == ["302 http://hub:8000/user/canary-1/"]


def test_open_server_503_after_ready_is_real_and_200_on_the_server_passes() -> None:
    with client(lambda r: httpx.Response(503, text="server not running")) as c, pytest.raises(CheckFailed) as info:
        probes.open_server(c, READY)
    assert info.value.kind is Kind.REAL and "after `ready`" in info.value.reason

    def lab(r: httpx.Request) -> httpx.Response:
        if r.url.path == "/user/canary-1/":
            return httpx.Response(302, headers={"location": "/user/canary-1/lab"})
        return httpx.Response(200, text="<html>jupyterlab</html>")

    with client(lab) as c:
        assert probes.open_server(c, READY)["final_url"] == "http://hub:8000/user/canary-1/lab"


def test_open_server_refused_is_transient() -> None:
    def refused(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=r)

    from bindery.deploy.classify import classify_exception

    with client(refused) as c, pytest.raises(httpx.ConnectError) as info:
        probes.open_server(c, READY)
    assert classify_exception(info.value).kind is Kind.TRANSIENT


def test_stop_server_asks_the_server_itself_with_the_token_404_is_fine() -> None:
    seen: list[httpx.Request] = []

    def server(r: httpx.Request) -> httpx.Response:
        seen.append(r)
        return httpx.Response(200)

    with client(server) as c:
        assert probes.stop_server(c, READY) == {"status": 200}
    assert seen[0].method == "POST" and seen[0].url.path == "/user/canary-1/api/shutdown"
    assert seen[0].headers["authorization"] == f"token {READY['token']}"
    with client(lambda r: httpx.Response(404)) as c:
        assert probes.stop_server(c, READY) == {"status": 404}
    with client(lambda r: httpx.Response(403)) as c, pytest.raises(CheckFailed) as info:
        probes.stop_server(c, READY)
    assert info.value.kind is Kind.REAL

