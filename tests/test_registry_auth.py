"""The registry with authentication on, against the real `docker-registry` binary.

- The stack's own registry (token auth, bindery/stack/registry_tokens.py): anyone pulls, only the
  pusher credential pushes, a wrong credential is refused; bindery's registry client follows the
  token flow and /health's check goes red on a 401.
- An operator's registry with HTTP basic auth (htpasswd): the client answers the basic challenge.
"""

from __future__ import annotations

import crypt
import shutil
import subprocess
import warnings
from pathlib import Path

import httpx
import pytest

from bindery import datadir
from bindery.registry_client import Registry, RegistryAuth
from bindery.settings import Settings
from bindery.stack import registry_server
from tests.conftest import free_port
from tests.registry_push import push_image


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("registry-auth"), registry_port=free_port())
    registry_server.start(settings, log=lambda _: None)
    try:
        yield settings
    finally:
        registry_server.stop(settings)


def test_anyone_pulls_only_the_pusher_pushes(registry: Settings):
    url = registry.registry.url
    pusher = datadir.registry_credential(registry)
    assert pusher is not None and pusher[0] == "pusher"
    with httpx.Client(timeout=10, auth=RegistryAuth(None)) as anonymous:
        assert anonymous.get(f"{url}/v2/").status_code == 200
        refused = push_image(anonymous, url, "bindery/victim-1234abcd", "c0ffee",
                             {"planted": b"evil"})
        assert refused.status_code == 401, refused.text
    with httpx.Client(timeout=10, auth=RegistryAuth(pusher)) as client:
        written = push_image(client, url, "bindery/victim-1234abcd", "c0ffee", {"mine": b"ok"})
        assert written.status_code == 201, written.text
        digest = written.headers["docker-content-digest"]
    with httpx.Client(timeout=10, auth=RegistryAuth(("pusher", "wrong"))) as wrong:
        assert wrong.get(f"{url}/v2/").status_code == 401
    with httpx.Client(timeout=10) as no_auth_at_all:  # without the token flow: nothing
        assert no_auth_at_all.get(f"{url}/v2/").status_code == 401
    return digest


async def test_client_reads_digests_through_the_token_flow(registry: Settings):
    digest = test_anyone_pulls_only_the_pusher_pushes(registry)
    image = f"{registry.registry.host}/bindery/victim-1234abcd:c0ffee"
    client = Registry(registry.registry.url, 5, 2)  # anonymous: pull tokens only
    try:
        assert await client.digest(image) == digest
        assert await client.image_exists(f"{registry.registry.host}/bindery/victim-1234abcd@{digest}")
        assert await client.digest(image.replace("c0ffee", "decaf")) is None
        await client.ping()
    finally:
        await client.aclose()
    refused = Registry(registry.registry.url, 5, 1, ("pusher", "wrong"))
    try:
        with pytest.raises(RuntimeError, match="401.*refuses bindery's registry credential"):
            await refused.ping()
    finally:
        await refused.aclose()


@pytest.fixture
def basic_registry(tmp_path: Path):
    """The registry binary with htpasswd (basic) auth, as an operator's registry may be."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # crypt: bcrypt from the C library
        hashed = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    (tmp_path / "htpasswd").write_text(f"operator:{hashed}\n")
    port = free_port()
    (tmp_path / "config.yml").write_text(f"""version: 0.1
storage: {{filesystem: {{rootdirectory: {tmp_path / "data"}}}}}
http: {{addr: "127.0.0.1:{port}", secret: test}}
auth: {{htpasswd: {{realm: test, path: {tmp_path / "htpasswd"}}}}}
""")
    proc = subprocess.Popen([shutil.which("docker-registry") or "docker-registry", "serve",
                             str(tmp_path / "config.yml")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/v2/", timeout=0.5)
                break
            except httpx.HTTPError:
                proc.wait(timeout=0.05) if proc.poll() is not None else None
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_client_answers_a_basic_challenge(basic_registry: str):
    with httpx.Client(timeout=10, auth=RegistryAuth(("operator", "s3cret"))) as client:
        written = push_image(client, basic_registry, "team/app", "v1", {"f": b"1"})
        assert written.status_code == 201, written.text
    host = basic_registry.removeprefix("http://")
    good = Registry(basic_registry, 5, 1, ("operator", "s3cret"))
    bad = Registry(basic_registry, 5, 1, ("operator", "nope"))
    try:
        assert await good.digest(f"{host}/team/app:v1") == written.headers["docker-content-digest"]
        await good.ping()
        with pytest.raises(RuntimeError, match="401"):
            await bad.ping()
    finally:
        await good.aclose()
        await bad.aclose()
