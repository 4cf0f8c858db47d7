"""The one event-stream reader: `bindery launch` resumes a broken stream with Last-Event-ID (one launch, no
event twice), gives up within its bound, and parses what EventSource parses.

The server here is tests/web/fakestack.py (the stream contract of bindery's /build handler, without the real
stack); tests/test_resume.py checks that contract on the real service.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from bindery import event_stream
from bindery.backoff import Backoff
from bindery.event_stream import Message, StreamBroken, StreamRefused
from tests.asgi_thread import serve_in_thread
from tests.web.fakestack import serve

FAST = Backoff(attempts=3, first=0.01, cap=0.05)


def test_the_parser_reads_what_eventsource_reads():
    lines = ["retry: 500", "", ": keepalive", "", "id: s1.0", "event: progress", "data: {\"a\":", "data: 1}", "",
             "data:no space", "", "id: s1.1", "data: last"]
    assert list(event_stream.messages(lines)) == [
        Message('{"a":\n1}', "s1.0", "progress"), Message("no space", "s1.0"), Message("last", "s1.1")]


def test_bindery_launch_resumes_its_stream_with_last_event_id():
    with serve() as (web_url, record):
        parts = urlsplit(web_url)
        env = {**os.environ, "BINDERY_HOST": parts.hostname, "BINDERY_PORT": str(parts.port),
               "BINDERY_PUBLIC_URL": ""}
        done = subprocess.run([sys.executable, "-m", "bindery", "launch", "gh/org/flaky/main", "--json"],
                              capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["phase"] == "ready"
    # the first connection dropped after event 4; the CLI came back once, with that id; one launch in all
    assert record.streams == [("gh/org/flaky/main", None), ("gh/org/flaky/main", "s1.4")]
    assert record.launches["gh/org/flaky/main"] == 1
    building = [line for line in done.stderr.splitlines() if "Step " in line]
    assert len(building) == len(set(building)) == 6  # resumed after the last event seen: none twice


def test_the_deploy_probe_resumes_too():
    from bindery.deploy import probes

    with serve() as (web_url, record), httpx.Client(timeout=30) as client:
        ready = probes.launch(client, web_url, "gh/org/flaky/main", timeout=60)
    assert ready["ready"]["phase"] == "ready"
    assert [last for _, last in record.streams] == [None, "s1.4"]


async def test_resuming_is_bounded_and_says_so():
    calls: list[str | None] = []

    async def always_drops(request):  # noqa: ANN001
        calls.append(request.headers.get("last-event-id"))

        async def body():
            yield f"id: x.{len(calls)}\ndata: {{}}\n\n"  # one event, then the connection ends
        return StreamingResponse(body(), media_type="text/event-stream")

    async def refuses(request):  # noqa: ANN001
        return StreamingResponse(iter(["nope"]), status_code=404)

    app = Starlette(routes=[Route("/drops", always_drops), Route("/refuses", refuses)])
    with serve_in_thread(app, "dropping stream") as base:
        async with httpx.AsyncClient(timeout=10) as client:
            got = []
            with pytest.raises(StreamBroken, match=r"could not be resumed \(3 reconnections\)"):
                async for message in event_stream.follow(client, f"{base}/drops", done=lambda m: False,
                                                         retries=2, reconnects=3, backoff=FAST):
                    got.append(message.id)
            # each connection brought news, so each came back with the last id, until the bound in all
            assert got == ["x.1", "x.2", "x.3", "x.4"] and calls == [None, "x.1", "x.2", "x.3"]
            with pytest.raises(StreamRefused) as refused:
                async for _ in event_stream.follow(client, f"{base}/refuses", done=lambda m: True):
                    pass
            assert refused.value.status_code == 404
