"""Hostile input against the running service: clear refusals, no crash, no command run."""

from __future__ import annotations

import os

import httpx

from bindery.events import Event
from tests.hostile_corpus import CANARY, corpus


async def final_event(client: httpx.AsyncClient, url: str) -> tuple[int, Event | None]:
    async with client.stream("GET", url) as response:
        if response.status_code != 200:
            return response.status_code, None
        last = None
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                last = Event.model_validate_json(line[5:])
                if last.terminal:
                    break
        return 200, last


async def test_hostile_corpus_is_refused_and_runs_nothing(stack, git_server):
    if os.path.exists(CANARY):
        os.unlink(CANARY)
    pairs = corpus(git_server.base_url)
    assert len(pairs) >= 200
    base = stack.service.web_url.rstrip("/")
    problems = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(30)) as client:
        for provider, spec in pairs:
            url = f"{base}/build/{provider}/{spec}"
            try:
                status, event = await final_event(client, url)
            except httpx.InvalidURL:
                continue  # the client itself refuses to send it: nothing reached the service
            if status != 200:
                if not 400 <= status < 500:
                    problems.append((provider, spec[:80], f"HTTP {status}"))
                continue
            if event is None or event.phase != "failed" or not event.message:
                problems.append((provider, spec[:80], event))
                continue
            code = event.data().get("status_code")
            if code is not None and not 400 <= code < 500:
                problems.append((provider, spec[:80], code, event.message))
        # The service still answers.
        assert (await client.get(f"{base}/versions")).status_code == 200
    assert problems == []
    assert not os.path.exists(CANARY), "an injected command ran"
