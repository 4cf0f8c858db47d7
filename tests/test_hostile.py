"""Hostile input against the running service: clear refusals, no crash, no command run, no build.

Every pair of the corpus is sent: what httpx refuses to send is sent as raw bytes on a socket, so
nothing is skipped. A refusal counts only when it is clear: an HTTP 4xx, or a `failed` event with a
4xx `status_code` that is not an internal error. An injected command would run either in bindery's
process (the host's canary file) or in a build: no hostile request may start one (every build keeps
a log in the build-logs folder; none may appear).
"""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit

import httpx

from bindery.event_stream import amessages
from bindery.events import Event
from tests.hostile_corpus import CANARY, corpus


async def final_event(client: httpx.AsyncClient, url: str) -> tuple[int, Event | None]:
    async with client.stream("GET", url) as response:
        if response.status_code != 200:
            return response.status_code, None
        last = None
        async for message in amessages(response.aiter_lines()):
            last = Event.model_validate_json(message.data)
            if last.terminal:
                break
        return 200, last


async def raw_status(base: str, path: str) -> int:
    """Send ``GET path`` as raw bytes (httpx refused to) and return the status the service answers."""
    parts = urlsplit(base)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), 10)
    try:
        target = path.encode("utf-8", "surrogateescape")
        writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: " + parts.netloc.encode()
                     + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
    finally:
        writer.close()
    fields = status_line.split()
    return int(fields[1]) if len(fields) >= 2 and fields[1].isdigit() else 0


def build_logs(stack) -> set[str]:
    folder = stack.build_logs_path
    return set(os.listdir(folder)) if folder.is_dir() else set()


async def test_hostile_corpus_is_refused_and_runs_nothing(stack, git_server):
    if os.path.exists(CANARY):
        os.unlink(CANARY)
    pairs = corpus(git_server.base_url)
    assert len(pairs) >= 200
    base = stack.service.web_url.rstrip("/")
    logs_before = build_logs(stack)
    problems = []
    sent_raw = 0
    async with httpx.AsyncClient(timeout=httpx.Timeout(30)) as client:
        for provider, spec in pairs:
            url = f"{base}/build/{provider}/{spec}"
            try:
                status, event = await final_event(client, url)
            except httpx.InvalidURL:
                sent_raw += 1
                status, event = await raw_status(base, f"/build/{provider}/{spec}"), None
            if status != 200:
                if not 400 <= status < 500:
                    problems.append((provider, spec[:80], f"HTTP {status}"))
                continue
            if event is None or event.phase != "failed" or not event.message:
                problems.append((provider, spec[:80], event))
                continue
            code = event.data().get("status_code")
            if code is None or not 400 <= code < 500 or "internal error" in event.message:
                problems.append((provider, spec[:80], code, event.message))
        # The service still answers.
        assert (await client.get(f"{base}/versions")).status_code == 200
    assert problems == []
    assert sent_raw > 0  # the corpus holds requests httpx will not send; they were sent anyway
    assert not os.path.exists(CANARY), "an injected command ran"
    assert build_logs(stack) == logs_before, "a hostile request started a build"
