"""No reach into private networks, against the real service: a listener on a blocked address
(127.0.0.2; the test stack allows only 127.0.0.1) must see ZERO connections, whether a spec names
it directly, by a host name that resolves to it, through an HTTP redirect from an allowed server,
with a 40-hex ref (which skips ls-remote and goes to the build's clone), or as a submodule."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from bindery.outbound import BLOCKED_MESSAGE
from tests.gitserver import GitServer
from tests.hostile_corpus import private_network_specs
from tests.streams import collect, git_spec

BLOCKED_HOST = "127.0.0.2"
HOSTS = Path("/etc/hosts")


class Listener:
    """Counts every connection made to it (and answers nothing)."""

    def __init__(self) -> None:
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@pytest.fixture
async def blocked() -> AsyncIterator[tuple[Listener, int]]:
    listener = Listener()
    server = await asyncio.start_server(listener.handle, BLOCKED_HOST, 0)
    try:
        yield listener, server.sockets[0].getsockname()[1]
    finally:
        server.close()


@pytest.fixture
def blocked_name() -> Iterator[str]:
    """A host name that resolves to the blocked address (a line in /etc/hosts, removed after)."""
    name = f"bindery-blocked-{uuid.uuid4().hex[:8]}.test"
    line = f"{BLOCKED_HOST} {name}\n"
    with HOSTS.open("a") as hosts:
        hosts.write(line)
    try:
        yield name
    finally:
        HOSTS.write_text(HOSTS.read_text().replace(line, ""))


@pytest.fixture
async def redirector(blocked) -> AsyncIterator[tuple[list[int], str]]:
    """An allowed http server (127.0.0.1) that 302s every request to the blocked address."""
    _, port = blocked
    hits: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode("latin-1").split(" ")
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        hits.append(1)
        path = request_line[1] if len(request_line) > 1 else "/"
        writer.write(f"HTTP/1.1 302 Found\r\nLocation: http://{BLOCKED_HOST}:{port}{path}\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield hits, f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


async def test_blocked_address_sees_no_connection(stack, blocked, blocked_name, redirector):
    listener, port = blocked
    redirect_hits, redirect_at = redirector
    specs = private_network_specs(f"{BLOCKED_HOST}:{port}", f"{blocked_name}:{port}", redirect_at)
    slots = asyncio.Semaphore(6)  # a few at once: the session stack is shared

    async def one(provider: str, spec: str):
        async with slots:
            return await collect(stack, provider, spec)

    results = await asyncio.gather(*(one(provider, spec) for provider, spec in specs))
    for (provider, spec), events in zip(specs, results):
        last = events[-1]
        assert last.phase == "failed", (spec, last)
        if redirect_at not in unquote(spec):
            assert last.data()["status_code"] == 403, (spec, last.message)
            assert "non-public network" in last.message
        else:
            assert "redirect" in last.message, (spec, last.message)
    assert redirect_hits, "the redirecting server was asked (it is allowed)"
    assert listener.connections == 0


async def test_open_and_closed_blocked_ports_answer_alike(stack, blocked):
    _, open_port = blocked
    closed = await asyncio.start_server(lambda r, w: None, BLOCKED_HOST, 0)
    closed_port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    answers = []
    for port in (open_port, closed_port):
        events = await collect(stack, "git", git_spec(f"http://{BLOCKED_HOST}:{port}/hub/api", "HEAD"))
        answers.append((events[-1].phase, events[-1].data().get("status_code"), events[-1].message))
    assert answers[0] == answers[1] == (
        "failed", 403, BLOCKED_MESSAGE.format(host=BLOCKED_HOST))


async def test_submodule_on_blocked_address_is_not_fetched(stack, git_server: GitServer, base_image,
                                                           blocked):
    listener, port = blocked
    path, url = git_server.create("with-submodule", {
        "Dockerfile": f"FROM {base_image}\n",
        ".gitmodules": f'[submodule "sub"]\n\tpath = sub\n\turl = git://{BLOCKED_HOST}:{port}/org/sub\n',
    })
    repo = git_server.root / path
    git_server.git(repo, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},sub")
    git_server.git(repo, "commit", "-q", "-m", "add a submodule")
    events = await collect(stack, "git", git_spec(url, "main"))
    assert events[-1].phase == "failed"
    assert "submodules" in events[-1].message, events[-1].message
    assert listener.connections == 0
