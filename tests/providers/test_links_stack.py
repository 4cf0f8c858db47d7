"""Every Binder link works, on the session's real stack: DOI records downloaded, built and launched
with their files present; build-only and the api-only build service; a pre-built image; a private
repository whose token appears in no artifact; the gist two-part form; Binder-not-found answers."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bindery import datadir
from bindery.launches import pipeline
from bindery.events import Event
from bindery.launches.hub_api import Hub
from bindery.launches.services import Services
from bindery.registry_client import Registry
from bindery.settings import Settings
from bindery.stack.web_service import settings_env
from bindery.engine_clients import docker_client
from tests.conftest import free_port
from tests.production.own_stack import FROM_BASE, wait_for
from tests.providers.conftest import SECRET
from tests.providers.doiservers import SERVICES, settings_for
from tests.streams import bindery_users, collect, git_spec, open_server, phases


async def run(settings: Settings, provider: str, spec: str, **options) -> list[Event]:
    """A launch through the pipeline in this process (settings the stack's web service lacks)."""
    services = Services.create(settings)
    try:
        return [e async for e in pipeline.launch(services, provider, spec, **options)]
    finally:
        await services.aclose()


async def remove_users(settings: Settings, *events: Event) -> None:
    hub = Hub(datadir.hub_api(settings), datadir.hub_token(settings), 10)
    try:
        for event in events:
            if event.phase == "ready" and event.data().get("user"):
                await hub.delete_user(event.data()["user"])
    finally:
        await hub.aclose()


async def read_file(ready: Event, path: str) -> httpx.Response:
    data = ready.data()
    async with httpx.AsyncClient(timeout=15) as client:
        return await client.get(f"{data['url']}api/contents/{path}",
                                params={"token": data["token"], "content": "1"})


def record_files(name: str, marker: str) -> dict[str, bytes]:
    dockerfile = FROM_BASE + f"COPY --chown=1000:1000 data/{name}.txt /home/jovyan/{name}.txt\n"
    files = {"Dockerfile": dockerfile.encode(), f"data/{name}.txt": marker.encode()}
    if name == "zenodo":  # one zip holding one folder: unpacked and flattened, as repo2docker does
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as bundle:
            for path, content in files.items():
                bundle.writestr(f"record-1.0/{path}", content)
        return {"record.zip": buffer.getvalue()}
    if name in ("figshare", "ckan"):  # flat services: no folders
        return {"Dockerfile": dockerfile.replace("data/", "").encode(), f"{name}.txt":
                marker.encode()}
    return files


async def test_doi_records_are_downloaded_built_and_launched(stack, base_image):
    markers = {name: f"{name}-content-{uuid.uuid4().hex}" for name in SERVICES}
    servers, specs, updates = {}, {}, {}
    for name, make in SERVICES.items():
        servers[name], specs[name] = make(record_files(name, markers[name]))
        updates.update(settings_for(name, servers[name]))
    settings = stack.model_copy(update=updates)
    services = Services.create(settings)
    try:
        async def one(name: str) -> list[Event]:
            return [e async for e in pipeline.launch(services, name, specs[name])]
        results = dict(zip(SERVICES, await asyncio.gather(*(one(n) for n in SERVICES))))
        try:
            for name, events in results.items():
                assert events[-1].phase == "ready", (name, events[-1])
                log = "".join(e.message for e in events)
                assert "Downloading" in log and "building" in phases(events), name
                response = await read_file(events[-1], f"{name}.txt")
                assert response.status_code == 200, (name, response.text)
                assert response.json()["content"].strip() == markers[name]
                ready = events[-1].data()
                assert ready["binder_request"] == f"v2/{name}/{specs[name]}"

            assert "Unpacking record.zip" in "".join(e.message for e in results["zenodo"])
            assert servers["figshare"].requests["/never-fetched"] == 0  # link-only file skipped
            # Again: the version names the image, so nothing is downloaded or built twice
            # (build-only: the image question, without starting one more server).
            downloads = servers["hydroshare"].requests.copy()
            again = [e async for e in pipeline.launch(services, "hydroshare",
                                                      specs["hydroshare"], build_only=True)]
            assert again[-1].phase == "ready" and "building" not in phases(again)
            assert again[-1].data()["imageName"] == results["hydroshare"][-1].data()["image"]
            assert not [p for p in servers["hydroshare"].requests if "/data/contents/" in p
                        and servers["hydroshare"].requests[p] != downloads[p]]
        finally:
            await remove_users(settings, *(events[-1] for events in results.values()))
        # nothing is left in the download folder once the builds are done
        records = settings.data_dir / "cache" / "records"
        assert not records.exists() or not any(records.iterdir())
    finally:
        await services.aclose()
        for server in servers.values():
            server.stop()


async def test_a_record_with_a_file_outside_its_service_is_refused(stack):
    server, spec = SERVICES["figshare"]({"a.txt": b"x"})
    server.route = lambda path, query, headers: (  # a record whose file points elsewhere
        200, {"Content-Type": "application/json"},
        b'{"id": 9782777, "version": 2, "files": [{"name": "a.txt", "is_link_only": false, '
        b'"download_url": "http://169.254.169.254/latest/meta-data"}]}')
    try:
        events = await run(stack.model_copy(update={"figshare_api_url": server.url}),
                           "figshare", spec)
        assert events[-1].phase == "failed" and events[-1].data()["status_code"] == 422
        assert "not this service's address" in events[-1].message
    finally:
        server.stop()


async def test_prebuilt_image_launches_through_the_same_pipeline(stack, base_image):
    settings = stack.model_copy(update={"prebuilt_registries": [f"{stack.registry.host}/bindery/"]})
    events = await run(settings, "image", base_image)
    try:
        assert events[-1].phase == "ready", events[-1]
        assert "building" not in phases(events)
        assert events[-1].data()["image"] == base_image
        assert (await open_server(events[-1])).status_code == 200
    finally:
        await remove_users(settings, events[-1])
    outside = await run(settings, "image", "quay.io/someone/else:1")
    assert outside[-1].data()["status_code"] == 403 and "only from" in outside[-1].message
    missing = await run(settings, "image", f"{stack.registry.host}/bindery/nothing-here:1")
    assert missing[-1].data()["status_code"] == 404 and "does not exist" in missing[-1].message
    off = await run(stack, "image", base_image)  # not enabled by the operator
    assert off[-1].data()["status_code"] == 404


async def test_private_repository_secret_is_in_no_artifact(stack, git_server, private_git,
                                                            caplog):
    path, _ = git_server.create("private", {
        "Dockerfile": FROM_BASE + "COPY --chown=1000:1000 . /home/jovyan/repo\n",
        "notes.txt": "private notes\n"})
    url = f"{private_git.base_url}/{path}"
    settings = stack.model_copy(update={
        "git_credentials": {f"{private_git.base_url}/": SecretStr(SECRET)}})
    header = base64.b64encode(f"x-access-token:{SECRET}".encode())
    needles = (SECRET.encode(), header)
    caplog.set_level("DEBUG")
    events = await run(settings, "git", git_spec(url, "main"))
    try:
        assert events[-1].phase == "ready", events[-1]
        assert f"Basic {header.decode()}" in private_git.authorization_seen  # the token was used
        image = events[-1].data()["image"]
        # events
        assert not any(n.decode() in e.to_json() for e in events for n in needles)
        # every image layer (the clone's .git/config is in it: the search is not vacuous)
        build = docker_client(stack.build_socket, 120)
        try:
            archive = b"".join(build.images.get(image).save())
        finally:
            build.close()
        assert b"[remote \"origin\"]" in archive and url.encode() in archive
        assert not any(n in archive for n in needles)
        # every log file of the stack, and this process's log records
        for log in Path(settings.logs_dir).rglob("*"):
            if log.is_file():
                text = log.read_bytes()
                assert not any(n in text for n in needles), log
        assert not any(n.decode() in caplog.text for n in needles)
        # the launched server's environment (every process in it)
        run_side = docker_client(stack.run_socket, 60)
        try:
            # launched by the digest its build pushed: the container names repository@digest
            [container] = [c for c in run_side.containers.list()
                           if c.attrs["Config"]["Image"].split("@")[0] == image.rsplit(":", 1)[0]]
            code, out = container.exec_run(["sh", "-c", "cat /proc/[0-9]*/environ; env"])
            assert code == 0 and b"JUPYTERHUB_API_TOKEN" in out
            assert not any(n in out for n in needles)
        finally:
            run_side.close()
        assert (await read_file(events[-1], "repo/notes.txt")).status_code == 200
    finally:
        await remove_users(settings, events[-1])
    # Without the token the same link fails clearly, naming no secret.
    refused = await run(stack, "git", git_spec(url, "main"))
    assert refused[-1].phase == "failed" and "Could not reach the repository" in \
        refused[-1].message


async def test_build_only_and_the_api_only_build_service(stack, git_repo_factory):
    path, url = git_repo_factory("buildonly", "RUN echo build-only")
    # The public service does not build without launching (no token secret, no allow list).
    refused = await collect(stack, "git", git_spec(url, "main") + "?build_only=true")
    assert refused[-1].phase == "failed" and refused[-1].data()["status_code"] == 403
    # A build service: api_only with an allow list, and a hub address where nothing listens.
    # (Rules match every spelling of a repository, so the allow list names this one.)
    service = stack.model_copy(update={"api_only": True, "allowed_specs": ["/buildonly-"],
                                       "port": free_port(), "public_url": "",
                                       "hub_api_url": f"http://127.0.0.1:{free_port()}/hub/api"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERY_")}
    env.update(settings_env(service))
    proc = subprocess.Popen([sys.executable, "-m", "bindery", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = service.web_url.rstrip("/")

        async def answers() -> bool:
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    return (await client.get(f"{base}/versions")).status_code == 200
            except httpx.HTTPError:
                return False
        await wait_for(answers, 60, "the api-only service answers /versions")
        events = await collect(service, "git", git_spec(url, "main"))
        last = events[-1]
        assert last.phase == "ready", last
        image = last.data()["imageName"]
        assert "url" not in last.data() and "token" not in last.data()
        registry = Registry(stack.registry.url, 5, 2)
        try:
            assert await registry.image_exists(image)
        finally:
            await registry.aclose()
        hub = Hub(datadir.hub_api(stack), datadir.hub_token(stack), 10)
        try:
            assert bindery_users(await hub.list_users(), url) == []
        finally:
            await hub.aclose()
        # not on the allow list: refused
        other = await collect(service, "gh", "someone/else/main")
        assert other[-1].data()["status_code"] == 403
        async with httpx.AsyncClient(timeout=10) as client:
            health = await client.get(f"{base}/health")
            assert health.status_code == 200, health.text
            assert "JupyterHub API" not in {c["service"] for c in health.json()["checks"]}
            assert (await client.get(f"{base}/v2/git/x/main")).status_code == 404
            assert (await client.get(f"{base}/metrics")).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)


async def test_gist_two_part_form_launches(stack, git_server, base_image):
    gist_id = f"g{uuid.uuid4().hex[:12]}"
    repo = git_server.root / gist_id
    repo.mkdir()
    git_server.git(repo, "init", "-q", "-b", "main")
    git_server.commit(repo, {"Dockerfile": f"FROM {base_image}\n"}, "gist")
    events = await collect(stack, "gist", f"someone/{gist_id}")
    assert events[-1].phase == "ready", events[-1]
    ready = events[-1].data()
    assert ready["binder_persistent_request"].startswith(f"v2/gist/someone/{gist_id}/")
    await remove_users(stack, events[-1])


@pytest.mark.parametrize("path,status", [("/user/doesntexist", 424), ("/other/doesntexist", 404)])
async def test_binder_not_found_through_the_hub(stack, path, status):
    """mybinder.org-deploy's test_hub_user_redirect: any client, through the hub's URL."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(stack.hub_public + path)  # Accept: */*, like requests
        assert response.status_code == status
        assert "Binder not found" in response.text
        as_json = await client.get(stack.hub_public + path, headers={"Accept": "application/json"})
        assert as_json.status_code == status and as_json.json()["error"] == "Binder not found"
