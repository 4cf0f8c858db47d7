"""Build logs of private repositories are private (the real service and stack): the launch that
built it gets a log URL with a key and reads it; the log's name alone (computable from the
repository URL and commit), or a wrong key, gets the same 404 as a log that does not exist.
Public repositories' logs stay readable by name (tests/production/test_build_survives.py)."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from bindery.event_stream import amessages
from bindery.builds.executors.base import build_name
from bindery.events import Event
from tests.production.conftest import start_service
from tests.production.own_stack import FROM_BASE
from tests.providers.conftest import SECRET
from tests.streams import git_spec


async def test_a_private_repositorys_build_log_needs_its_key(stack, git_server, private_git,
                                                             tmp_path):
    marker = f"private-build-output-{uuid.uuid4().hex}"
    path, _ = git_server.create("private-log", {"Dockerfile": f"{FROM_BASE}RUN echo {marker}\n"})
    url = f"{private_git.base_url}/{path}"
    service = start_service(stack, tmp_path / "logs", allowed_specs=[".*"],
                            git_credentials={f"{private_git.base_url}/": SecretStr(SECRET)})
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=300)) as client:
            events: list[Event] = []
            async with client.stream("GET", f"{service.url}/build/git/{git_spec(url, 'main')}",
                                     params={"build_only": "true"}) as response:
                async for message in amessages(response.aiter_lines()):
                    events.append(Event.model_validate_json(message.data))
            assert events[-1].phase == "ready", events[-1]
            [log_url] = {e.data()["build_log_url"] for e in events if "build_log_url" in e.data()}
            parts = urlsplit(log_url)
            assert parts.query.startswith("key="), log_url
            name = parts.path.rsplit("/", 1)[1]
            assert name == build_name(events[-1].data()["image"])  # computable by anyone...
            base = f"{service.url}/build-logs/{name}"
            # ...but only the launch's own link opens it, page and text alike
            page = await client.get(f"{base}?{parts.query}")
            assert page.status_code == 200 and marker in page.text
            assert f"{name}.txt?{parts.query}" in page.text  # the text link keeps the key
            text = await client.get(f"{base}.txt?{parts.query}")
            assert text.status_code == 200 and marker in text.text
            for refused in (base, f"{base}.txt", f"{base}?key={parts.query[4:][::-1]}",
                            f"{base}.txt?key=", f"{base}?key=%C3%A9"):
                answer = await client.get(refused)
                assert answer.status_code == 404, refused
                assert marker not in answer.text
    finally:
        service.stop()
    assert parts.query[4:] not in service.log_text()  # the key is never logged
