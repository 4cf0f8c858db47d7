"""Sign-up and login with JupyterHub's NativeAuthenticator, driven in headless Chromium; a person's
launches are named servers of theirs, listed and stopped on bindery's pages; another person can
neither see nor stop them (through the page, bindery's API or the hub); a restarted bindery and a
second bindery process know the person from the same cookie. Each of a person's servers mounts their
home for its repository: what they write there is back on their next server of that repository, and
on no other repository's, and no other person reaches it (person homes have no resume link)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bindery import datadir
from bindery.backoff import wait_until
from bindery.engine_clients import docker_client
from bindery.launches.homes import RESUME_LINK, VOLUME_PREFIX
from bindery.stack import home_volumes, web_service
from bindery.state import open_store
from tests.production.conftest import start_service
from tests.production.own_stack import FROM_BASE
from tests.signin.conftest import PEOPLE, git_spec, launch, signin_cookie, stream, web
from tests.test_homes import contents
from tests.web.browser import needs_chromium, shot

pytestmark = needs_chromium


def sign_up_and_in(browser, settings, name: str):
    """A new person signs up on the hub's page, then signs in to bindery (through the hub)."""
    password = PEOPLE[name]
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{settings.hub_public}/hub/signup")
    page.fill("#username_input", name)
    if page.locator("#email_input").count():  # asked only when the operator wants emails
        page.fill("#email_input", f"{name}@example.org")
    page.fill("#password_input", password)
    page.fill("#password_confirmation_input", password)
    page.click("#signup_submit")
    page.wait_for_selector(".alert-success", timeout=15000)
    page.goto(f"{web(settings)}/")
    page.wait_for_selector("#person-who a:has-text('Sign in')", timeout=15000)  # anonymous now
    page.click("#person-who a:has-text('Sign in')")
    page.wait_for_selector("#login_submit", timeout=15000)  # the hub's login page
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_selector(f"#person-who:has-text('Signed in as {name}')", timeout=30000)
    assert page.url.rstrip("/") == web(settings)  # back where the sign-in started
    return context, page


def me(settings, cookies) -> httpx.Response:
    return httpx.get(f"{web(settings)}/api/me", cookies=cookies, timeout=15)


def hub_user(settings, name: str) -> dict:
    """The hub's own record of a user (sync: Playwright's sync API holds this thread's loop)."""
    answer = httpx.get(f"{datadir.hub_api(settings)}/users/{name}", timeout=15,
                       headers={"Authorization": f"token {datadir.hub_token(settings)}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def home_files(ready: dict, write: dict[str, str] | None = None,
               read: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Write files into a server's home and read others back (None: not there), through Jupyter's
    contents API with the server's token."""
    async def run() -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        async with httpx.AsyncClient(timeout=30) as client:
            for name, text in (write or {}).items():
                await contents(client, ready, name, text)
            for name in read:
                answer = await client.get(f"{ready['url']}api/contents/{name}", params={
                    "content": "1"}, headers={"Authorization": f"token {ready['token']}"})
                assert answer.status_code in (200, 404), (name, answer.status_code)
                found[name] = answer.json()["content"] if answer.status_code == 200 else None
        return found
    return in_thread(run())


def in_thread(coroutine):
    """Run a coroutine to its end in a thread of its own (Playwright's sync API holds this
    thread's event loop)."""
    with ThreadPoolExecutor(1) as worker:
        return worker.submit(asyncio.run, coroutine).result()


async def resume_link_volumes(settings) -> list[str]:
    """The home volume of every resume link the state store holds."""
    store = open_store(settings)
    try:
        return [(await store.get(RESUME_LINK, key) or {}).get("volume", "")
                for key in await store.keys(RESUME_LINK)]
    finally:
        await store.aclose()


def stop_all(settings, cookies, name: str) -> None:
    """Stop every server of the person through bindery's API; wait until the hub has none left."""
    for server in me(settings, cookies).json()["servers"]:
        answer = httpx.delete(f"{web(settings)}/api/servers/{server['name']}", cookies=cookies,
                              timeout=60)
        assert answer.status_code == 202, answer.text
    wait_until(lambda: not [n for n in hub_user(settings, name)["servers"] if n], timeout=120,
               what=f"{name}'s servers stopped", interval=0.2, cap=2.0)


def launched(settings, spec: str, cookies) -> dict:
    events = launch(settings, spec, cookies)
    assert events[-1].phase == "ready", events[-1].message
    ready = events[-1].data()
    # A person's home is theirs through their sign-in alone: no link that would open it for others.
    assert not {"resume_url", "home_download_url", "home_delete_url"} & set(ready), ready
    return ready


def homes_are_per_person_and_repository(settings, alice_cookie, bob_cookie, spec_a: str,
                                        spec_b: str) -> None:
    stop_all(settings, alice_cookie, "alice")
    a, b = launched(settings, spec_a, alice_cookie), launched(settings, spec_b, alice_cookie)
    home_files(a, write={"alice-a.txt": "alice's work on A"})
    home_files(b, write={"alice-b.txt": "alice's work on B"})
    stop_all(settings, alice_cookie, "alice")

    # New servers (new names) of the same repositories: each has its own home's file back, and
    # not the other repository's.
    a2, b2 = launched(settings, spec_a, alice_cookie), launched(settings, spec_b, alice_cookie)
    assert {a2["user"], b2["user"]}.isdisjoint({a["user"], b["user"]})
    assert home_files(a2, read=("alice-a.txt", "alice-b.txt")) == {
        "alice-a.txt": "alice's work on A", "alice-b.txt": None}
    assert home_files(b2, read=("alice-a.txt", "alice-b.txt")) == {
        "alice-a.txt": None, "alice-b.txt": "alice's work on B"}

    # Bob's server of A has a home of his own: none of alice's files.
    bob_a = launched(settings, spec_a, bob_cookie)
    assert bob_a["user"].startswith("bob/")
    assert home_files(bob_a, read=("alice-a.txt", "alice-b.txt")) == {
        "alice-a.txt": None, "alice-b.txt": None}
    # One home per person and repository on the run engine: alice's A and B, bob's A.
    run_side = docker_client(settings.run_socket, 60)
    try:
        person_homes = {v for v in home_volumes.names(run_side.api)
                        if v.startswith(VOLUME_PREFIX + "p")}
    finally:
        run_side.close()
    assert len(person_homes) == 3, person_homes
    # No route of bindery's reaches alice's homes: no resume link points at a person's home (there
    # is none to find), and guesses at the resume routes (home volumes' names, her server's name)
    # are refused, on the routes and on the launch stream.
    assert not person_homes & set(in_thread(resume_link_volumes(settings)))
    for guess in [*sorted(person_homes), a2["user"].split("/", 1)[1], "alice", "A" * 43]:
        download = httpx.get(f"{web(settings)}/resume/{guess}/home.tar.gz", cookies=bob_cookie,
                             timeout=15)
        assert download.status_code == 404, (guess, download.status_code)
        delete = httpx.post(f"{web(settings)}/resume/{guess}/delete", cookies=bob_cookie,
                            timeout=15)
        assert delete.status_code == 404, (guess, delete.status_code)
        resumed = stream(f"{web(settings)}/build/resume/{guess}", bob_cookie)
        assert resumed[-1].phase == "failed" and resumed[-1].data()["status_code"] == 404, guess
    assert home_files(a2, read=("alice-a.txt",)) == {"alice-a.txt": "alice's work on A"}


def test_people_sign_up_sign_in_and_keep_their_servers_to_themselves(
        native_stack, git_server, browser):
    settings = native_stack
    _, url = git_server.create("signin", {"Dockerfile": FROM_BASE})
    _, other_url = git_server.create("signin-other", {"Dockerfile": FROM_BASE})
    spec = git_spec(url)
    alice, alice_page = sign_up_and_in(browser, settings, "alice")
    alice_cookie = signin_cookie(alice)
    assert alice_cookie, "bindery set no sign-in cookie"

    # Two launches of one repository: two named servers of alice's, each ready with its token.
    first = launch(settings, spec, alice_cookie)
    assert first[-1].phase == "ready", first[-1].message
    second = launch(settings, spec, alice_cookie)
    assert second[-1].phase == "ready", second[-1].message
    names = {e.data()["user"] for e in (first[-1], second[-1])}
    assert len(names) == 2 and all(n.startswith("alice/b-") for n in names), names
    for ready in (first[-1], second[-1]):
        server = ready.data()["user"].split("/", 1)[1]
        assert ready.data()["url"].endswith(f"/user/alice/{server}/")
        assert httpx.get(f"{ready.data()['url']}api/status", timeout=15, headers={
            "Authorization": f"token {ready.data()['token']}"}).status_code == 200
    hub_servers = hub_user(settings, "alice")["servers"]
    assert {f"alice/{n}" for n in hub_servers if n} == names  # the hub's own record

    # The person's limit (2) holds: a third launch fails clearly, and leaves nothing behind.
    third = launch(settings, git_spec(other_url), alice_cookie)
    assert third[-1].phase == "failed" and "maximum of 2 named servers" in third[-1].message
    assert len(me(settings, alice_cookie).json()["servers"]) == 2
    # Sign-in is optional here: an anonymous launch is what it always was (a user of its own).
    anonymous = launch(settings, git_spec(other_url))
    assert anonymous[-1].phase == "ready", anonymous[-1].message
    assert anonymous[-1].data()["user"].startswith("b-") and "/" not in anonymous[-1].data()["user"]

    # The page lists both of alice's (and not the anonymous server).
    alice_page.goto(f"{web(settings)}/")
    alice_page.wait_for_selector("#person-servers li.server >> nth=1", timeout=15000)
    listed = alice_page.eval_on_selector_all("#person-servers li.server", "l => l.map(e => e.dataset.server)")
    assert {f"alice/{n}" for n in listed} == names
    shot(alice_page, "signin-two-servers")

    # Bob signs up too; he sees none of alice's servers, and cannot stop them.
    bob, bob_page = sign_up_and_in(browser, settings, "bob")
    bob_cookie = signin_cookie(bob)
    assert me(settings, bob_cookie).json()["servers"] == []
    # Quotas count people's servers: alice's two fill the repository's quota (2) for bob.
    full = launch(settings, spec, bob_cookie)
    assert full[-1].phase == "failed" and full[-1].data()["status_code"] == 429, full[-1]
    assert bob_page.locator("#person-servers li.server").count() == 0
    target = sorted(listed)[0]
    refused = httpx.delete(f"{web(settings)}/api/servers/{target}", cookies=bob_cookie, timeout=15)
    assert refused.status_code == 404
    for hostile in (f"..%2Falice%2F{target}", "alice%2F" + target, target + "%00", "x" * 300):
        answer = httpx.delete(f"{web(settings)}/api/servers/{hostile}", cookies=bob_cookie,
                              timeout=15)
        assert answer.status_code in (404, 405), (hostile, answer.status_code)
    anonymous = httpx.delete(f"{web(settings)}/api/servers/{target}", timeout=15)
    assert anonymous.status_code == 401
    forged = httpx.get(f"{web(settings)}/api/me", cookies={"bindery-signin": "alice"}, timeout=15)
    assert forged.status_code == 401
    # Bob's hub session does not open alice's server either (the hub's own access rules).
    answer = bob_page.request.get(f"{settings.hub_public}/user/alice/{target}/api/status",
                                  max_redirects=0)
    assert answer.status != 200
    assert len(me(settings, alice_cookie).json()["servers"]) == 2

    # A restarted bindery, and a second bindery process, know alice from the same cookie.
    web_service.stop(settings)
    web_service.start(settings, log=lambda line: None)
    assert {f"alice/{s['name']}" for s in me(settings, alice_cookie).json()["servers"]} == names
    other = start_service(settings, settings.logs_dir / "second")
    try:
        answer = httpx.get(f"{other.url}/api/me", cookies=alice_cookie, timeout=15)
        assert answer.status_code == 200 and answer.json()["name"] == "alice"
        assert len(answer.json()["servers"]) == 2
    finally:
        other.stop()

    # Alice stops one from the page; the hub no longer has it, and the other runs on.
    alice_page.goto(f"{web(settings)}/")
    alice_page.click(f"#person-servers li[data-server='{target}'] button.stop")
    alice_page.wait_for_function("document.querySelectorAll('#person-servers li.server').length == 1",
                                 timeout=30000)
    remaining = {n for n in hub_user(settings, "alice")["servers"] if n}
    assert remaining == {n.split("/", 1)[1] for n in names} - {target}
    assert me(settings, alice_cookie).json()["servers"][0]["ready"] is True

    # Homes: alice's servers of A and B each keep their own, across a stop; bob reaches neither.
    homes_are_per_person_and_repository(settings, alice_cookie, bob_cookie, spec,
                                        git_spec(other_url))
