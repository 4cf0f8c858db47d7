"""Homes on the real stack: an anonymous launch's files come back through its resume link on a new
server after the first one stopped and bindery restarted, merged with the repository's new commit by nbgitpuller's rules;
guessed, expired and deleted links are refused; a home holds no more than its size; expired volumes
are removed by the home cleaner."""

from __future__ import annotations

import io
import re
import secrets
import tarfile
import time

import httpx

from bindery.backoff import wait_until_async
from bindery.engine_clients import docker_client
from bindery.launches.homes import RESUME_LINK, Homes, resume_key
from bindery.stack import base_image, home_volumes, web_service
from bindery.stack.jupyterhub import home_folder
from bindery.state import open_store
from bindery.storage.home_cleaner import HomeCleaner
from tests.streams import collect, git_spec
from tests.test_resume import read_events

COPY_HOME = "COPY --chown=1000:100 . /home/jovyan/"


async def contents(client: httpx.AsyncClient, ready: dict, name: str, text: str | None = None) -> str:
    """Read (or write, with `text`) a file of the server's home through Jupyter's contents API."""
    url = f"{ready['url']}api/contents/{name}"
    headers = {"Authorization": f"token {ready['token']}"}
    if text is not None:
        response = await client.put(url, headers=headers, json={
            "type": "file", "format": "text", "content": text})
        assert response.status_code in (200, 201), response.text
        return text
    response = await client.get(url, headers=headers, params={"content": "1"})
    assert response.status_code == 200, (name, response.status_code, response.text[:300])
    return response.json()["content"]


async def stop(hub, user: str) -> None:
    """Stop the server and remove its user, as the idle culler does."""
    await hub.stop_server(user)
    await wait_until_async(lambda: hub.delete_user(user), timeout=60, what=f"{user} removed",
                           interval=0.1, cap=1.0)


async def stream(url: str) -> list:
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=300)) as client:
        async with client.stream("GET", url) as response:
            return [e for _, e in await read_events(response, lambda e: e.terminal)]


async def test_an_anonymous_home_comes_back_through_its_resume_link(stack, git_server,
                                                                     git_repo_factory, hub):
    path, url = git_repo_factory("homes", COPY_HOME, files={"notes.md": "v1\n", "data.txt": "d1\n"})
    first = (await collect(stack, "git", git_spec(url, "main")))[-1]
    assert first.phase == "ready", first
    ready = first.data()
    resume_url = ready["resume_url"]
    secret = resume_url.rsplit("/", 1)[1]
    assert resume_url == f"{stack.service.web_url}v2/resume/{secret}"
    store = open_store(stack)
    try:
        volume = (await store.get(RESUME_LINK, resume_key(secret)))["volume"]
    finally:
        await store.aclose()
    # A new home: no merge container before the server started; the engine filled it from the
    # image, and its manifest is written (from the image's files) after the server answered.
    assert f"home {volume} new (filled from the image)" in (stack.logs_dir / "hub.log").read_text()
    async with httpx.AsyncClient(timeout=30) as client:
        # right away, before the manifest may be written: it must not count this edit as the
        # repository's (else the resume below would overwrite it)
        await contents(client, ready, "notes.md", "my edit\n")
        await contents(client, ready, "mine.txt", "my work")  # the person's own file
        assert await contents(client, ready, "data.txt") == "d1\n"  # the repository's files
        page = await client.get(resume_url)
        assert page.status_code == 200 and f"build/resume/{secret}" in page.text
    await stop(hub, ready["user"])
    web_service.stop(stack)  # bindery restarts: the link lives in the state store, not in memory
    web_service.start(stack, log=lambda line: None)
    # The repository moves on: it changes the file the person edited and one they did not.
    newer = git_server.commit(git_server.root / path, {"notes.md": "v2\n", "data.txt": "d2\n"},
                              "upstream")

    # The link, asking for the newer commit: a new server with the same home. (A branch name works
    # too, once the service's ref cache has seen the branch move.)
    events = await stream(resume_url.replace("/v2/", "/build/") + f"?ref={newer}")
    assert events[-1].phase == "ready", events[-1]
    again = events[-1].data()
    assert again["user"] != ready["user"] and newer in again["binder_persistent_request"]
    assert again["resume_url"] == resume_url  # the same link still, on the new server's event
    async with httpx.AsyncClient(timeout=30) as client:
        assert await contents(client, again, "mine.txt") == "my work"  # came back
        assert await contents(client, again, "notes.md") == "my edit\n"  # the person's edit wins
        assert await contents(client, again, "data.txt") == "d2\n"  # unmodified: updated
        listing = (await client.get(f"{again['url']}api/contents/", headers={
            "Authorization": f"token {again['token']}"})).json()["content"]
        # judged by the first launch's manifest: nothing was taken for an unknown file and renamed
        names = [f["name"] for f in listing]
        assert "mine.txt" in names and not [n for n in names if re.search(r"_\d{14}", n)], names
        await contents(client, again, "later.txt", "more work")
    assert f"home {volume} merged" in (stack.logs_dir / "hub.log").read_text()
    await stop(hub, again["user"])
    # The same image again: the home holds its files merged already, so the merge is skipped.
    events = await stream(resume_url.replace("/v2/", "/build/") + f"?ref={newer}")
    assert events[-1].phase == "ready", events[-1]
    again = events[-1].data()
    assert "already merged (same image)" in (stack.logs_dir / "hub.log").read_text()
    async with httpx.AsyncClient(timeout=30) as client:
        assert await contents(client, again, "later.txt") == "more work"
        assert await contents(client, again, "notes.md") == "my edit\n"
        archive = await client.get(ready["home_download_url"])
        assert archive.status_code == 200
        names = tarfile.open(fileobj=io.BytesIO(archive.content)).getnames()
        assert "./mine.txt" in names and "./.bindery-home.json" not in names
    await stop(hub, again["user"])

    # A guessed link, an expired link, a deleted link: refused, clearly, never a 500.
    guessed = await stream(f"{stack.service.web_url}build/resume/{'x' * 43}")
    assert guessed[-1].phase == "failed" and guessed[-1].data()["status_code"] == 404
    store = open_store(stack)
    try:
        key = resume_key(secret)
        record = await store.get(RESUME_LINK, key)
        retention = stack.launches.home_retention_days * 86400
        await store.put(RESUME_LINK, key, {**record, "at": time.time() - retention - 60}, 3600)
        expired = await stream(resume_url.replace("/v2/", "/build/"))
        assert expired[-1].phase == "failed" and expired[-1].data()["status_code"] == 410
        assert "expired" in expired[-1].message
        await store.put(RESUME_LINK, key, record, 3600)  # fresh again, to delete it
    finally:
        await store.aclose()
    async with httpx.AsyncClient(timeout=30) as client:
        deleted = await client.post(ready["home_delete_url"])
        assert deleted.status_code == 200 and deleted.json()["deleted"]
        assert (await client.post(ready["home_delete_url"])).status_code == 404
        assert (await client.get(ready["home_download_url"])).status_code == 404
    api = docker_client(stack.run_socket, 30).api
    try:
        assert record["volume"] not in home_volumes.names(api)  # no server used it: gone now
    finally:
        api.close()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_the_home_cleaner_removes_volumes_past_their_retention(stack):
    clock = Clock()
    store = open_store(stack)
    api = docker_client(stack.run_socket, 30).api
    folder = home_folder(stack)
    homes = Homes(store, 600.0, clock=clock)
    made: list[str] = []
    holder = None
    try:
        _, old = await homes.issue_resume("gh", "o/r/" + "a" * 40, "o/r/", "r")
        _, mounted = await homes.issue_resume("gh", "o/r/" + "a" * 40, "o/r/", "r")
        for home in (old, mounted):
            home_volumes.ensure(api, home.volume, folder, 16)
            made.append(home.volume)
        # a server (stopped or not) still mounts this one: kept, though past its retention
        holder = api.create_container(base_image.image_name(stack), command=["true"],
                                      host_config=api.create_host_config(
                                          binds={mounted.volume: {"bind": "/h", "mode": "rw"}}))["Id"]
        # the size limit holds: a 16 MiB home refuses a 40 MiB file, and costs no more on disk
        filler = api.create_container(
            base_image.image_name(stack), user="1000:100",
            command=["dd", "if=/dev/zero", "of=/h/big", "bs=1M", "count=40"],
            host_config=api.create_host_config(binds={old.volume: {"bind": "/h", "mode": "rw"}},
                                               network_mode="none", cap_drop=["ALL"]))["Id"]
        try:
            api.start(filler)
            assert api.wait(filler, timeout=60)["StatusCode"] != 0
            assert b"No space left" in api.logs(filler)
        finally:
            api.remove_container(filler, force=True)
        assert home_volumes.volume_file(folder, old.volume).stat().st_blocks * 512 <= 17 * 2**20
        clock.now += 601  # both past their retention...
        _, fresh = await homes.issue_resume("gh", "o/r/" + "a" * 40, "o/r/", "r")  # ...not this
        home_volumes.ensure(api, fresh.volume, folder, 16)
        made.append(fresh.volume)
        cleaner = HomeCleaner(lambda: docker_client(stack.run_socket, 30).api, folder, homes)
        result = cleaner.clean(await homes.last_used())
        # (other tests' homes, judged by the same moved clock, may go too)
        assert old.volume in result.removed and mounted.volume in result.kept_in_use
        assert fresh.volume not in result.removed
        names = home_volumes.names(api)
        assert old.volume not in names and fresh.volume in names
        assert not home_volumes.volume_file(folder, old.volume).exists()
        assert result.before > result.after > 0  # counted on disk: what is left is still counted
        api.remove_container(holder, force=True)
        holder = None
        assert mounted.volume in cleaner.clean(await homes.last_used()).removed  # once unused
    finally:
        if holder is not None:
            api.remove_container(holder, force=True)
        for name in made:
            home_volumes.remove(api, name, folder)
        api.close()
        await store.aclose()


def test_a_new_home_takes_the_spare_file_and_works_as_one_made_then(stack):
    """A spare home file (made after the last new home's server answered) becomes the next new
    home by a rename: one spare at a time, claimed once; the home it makes is empty, its root the
    server user's, its size bounded; without a spare the home is made as before."""
    api = docker_client(stack.run_socket, 30).api
    folder = home_folder(stack)
    names = [f"{home_volumes.PREFIX}{secrets.token_hex(12)}" for _ in range(2)]
    spare = home_volumes.spare_file(folder, 16)
    spare.unlink(missing_ok=True)  # another test's spare of this size: start from none
    try:
        assert home_volumes.make_spare(folder, 16) is True
        assert home_volumes.make_spare(folder, 16) is False  # one is enough
        assert spare.is_file()
        assert home_volumes.ensure(api, names[0], folder, 16) is True
        assert not spare.exists()  # taken
        assert home_volumes.ensure(api, names[1], folder, 16) is True  # none left: made now
        assert home_volumes.ensure(api, names[0], folder, 16) is False
        for name in names:
            container = api.create_container(
                base_image.image_name(stack), user="1000:100",
                command=["sh", "-c", "ls -A /h; stat -c %u:%g /h; echo hi > /h/x && cat /h/x; "
                         "dd if=/dev/zero of=/h/big bs=1M count=40 2>/dev/null || echo full"],
                host_config=api.create_host_config(binds={name: {"bind": "/h", "mode": "rw"}},
                                                   network_mode="none", cap_drop=["ALL"]))["Id"]
            try:
                api.start(container)
                assert api.wait(container, timeout=60)["StatusCode"] == 0
                assert api.logs(container).decode().split() == ["1000:100", "hi", "full"], name
            finally:
                api.remove_container(container, force=True)
            assert home_volumes.volume_file(folder, name).is_file()
        # neither the disk count nor the cleaner sees a spare as a home
        home_volumes.make_spare(folder, 16)
        assert spare.parent != folder and not spare.name.startswith(home_volumes.PREFIX)
    finally:
        for name in names:
            home_volumes.remove(api, name, folder)
        spare.unlink(missing_ok=True)
        api.close()
