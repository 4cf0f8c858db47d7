"""One HTTP-client factory: every client bindery makes has a timeout, bindery's User-Agent and a stated proxy
and redirect policy, and none is made elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from bindery import http_clients
from bindery.engine_clients import http_client as engine_http_client

PACKAGE = Path(__file__).resolve().parents[2] / "bindery"


def test_no_client_is_made_outside_the_factory():
    made = re.compile(r"httpx\.(Async)?Client\(")
    elsewhere = [f"{path.relative_to(PACKAGE.parent)}:{n}" for path in PACKAGE.rglob("*.py")
                 if path.name != "http_clients.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if made.search(line)]
    assert elsewhere == []


def test_the_policy_is_stated_once():
    client = http_clients.async_client(timeout=3)
    assert client.headers["User-Agent"].startswith("bindery/")
    assert client.timeout == httpx.Timeout(3)
    assert (client.follow_redirects, client.trust_env) == (False, True)
    direct = http_clients.client(timeout=http_clients.bounds(30, connect=5.0), proxy=http_clients.DIRECT,
                                 follow_redirects=True, agent="git/2")
    assert (direct.follow_redirects, direct.trust_env, direct.headers["User-Agent"]) == (True, False, "git/2")
    assert direct.timeout.connect == 5.0 and direct.timeout.read == 30


def test_a_timeout_is_required_and_the_proxy_policy_is_one_of_two():
    with pytest.raises(TypeError):
        http_clients.async_client()  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        http_clients.client(timeout=1, proxy="maybe")  # type: ignore[arg-type]


def test_engine_clients_keep_their_socket_and_take_the_policy(tmp_path):
    client = engine_http_client(f"unix://{tmp_path}/engine.sock", 7.0)
    assert client.headers["User-Agent"].startswith("bindery/")
    assert client.trust_env is False and client.timeout.read is None and client.timeout.connect == 7.0
