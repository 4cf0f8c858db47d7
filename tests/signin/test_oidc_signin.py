"""Sign-in with oauthenticator's GenericOAuthenticator against a real OpenID Connect provider (the
authorization-code flow driven in Chromium), sign-in required, and the person's own token (their
authenticator's auth_state) opening their private repository: never the operator's token for that
host, and the person's token in no event, image layer, log or server."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx

from bindery import datadir
from bindery.engine_clients import docker_client
from tests.production.own_stack import FROM_BASE
from tests.signin.conftest import OPERATOR_TOKEN, git_spec, launch, signin_cookie, web
from tests.web.browser import needs_chromium, shot

pytestmark = needs_chromium


def auth_state(settings, name: str) -> dict:
    """What the hub keeps for the person (bindery's service may read it: admin:auth_state)."""
    answer = httpx.get(f"{datadir.hub_api(settings)}/users/{name}", timeout=15,
                       headers={"Authorization": f"token {datadir.hub_token(settings)}"})
    assert answer.status_code == 200, answer.text
    return answer.json().get("auth_state") or {}


def test_oidc_sign_in_and_the_persons_own_token_for_their_private_repository(
        oidc_stack, oidc_provider, token_git, git_server, browser):
    settings = oidc_stack
    path, _ = git_server.create("mine", {
        "Dockerfile": FROM_BASE + "COPY --chown=1000:1000 . /home/jovyan/repo\n",
        "notes.txt": "carol's notes\n"})
    url = f"{token_git.base_url}/{path}"
    spec = git_spec(url)

    # Sign-in is required: an anonymous stream is refused before anything is fetched.
    seen_before = len(token_git.authorization_seen)
    anonymous = launch(settings, spec)
    assert anonymous[-1].phase == "failed" and anonymous[-1].data()["status_code"] == 401
    assert len(token_git.authorization_seen) == seen_before

    # The launch page sends a person to sign in: the hub's login page, the provider's form, and
    # back to the launch page, which launches and lands on the person's server.
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{web(settings)}/v2/git/{spec}")
    page.click("a:has-text('Sign in with Test IdP')", timeout=20000)
    page.wait_for_selector("input[name=username]", timeout=20000)  # the provider's own page
    assert page.url.startswith(oidc_provider.url)
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", "carol-password-51ab")
    page.click("button[type=submit]")
    page.wait_for_url(f"{settings.hub_public}/user/carol/b-*/**", timeout=240000)
    shot(page, "signin-oidc-server")
    cookie = signin_cookie(context)
    servers = httpx.get(f"{web(settings)}/api/me", cookies=cookie, timeout=15).json()["servers"]
    assert [s["repo_url"] for s in servers] == [url] and servers[0]["ready"]

    # The person's token from the provider (the hub keeps it in auth_state) opened the repository;
    # the operator's token for the same host, which the host would accept, was never sent.
    token = auth_state(settings, "carol")["access_token"]
    assert oidc_provider.userinfo(token)["preferred_username"] == "carol"
    header = base64.b64encode(f"x-access-token:{token}".encode())
    operator = base64.b64encode(f"x-access-token:{OPERATOR_TOKEN}".encode())
    assert f"Basic {header.decode()}" in token_git.authorization_seen
    assert not any(operator.decode() in seen for seen in token_git.authorization_seen)

    # A second launch (from the event stream, as a client reads it) is the person's too.
    events = launch(settings, spec, cookie)
    assert events[-1].phase == "ready", events[-1].message
    ready = events[-1].data()
    assert ready["user"].startswith("carol/b-")
    notes = httpx.get(f"{ready['url']}api/contents/repo/notes.txt", timeout=15,
                      params={"token": ready["token"], "content": "1"})
    assert notes.status_code == 200 and "carol's notes" in notes.json()["content"]

    # The token is in no event, no image layer (the clone's .git/config is there: the search
    # is not vacuous), no log of the stack, and no process of the person's server.
    needles = (token.encode(), header)
    assert not any(n.decode() in e.to_json() for e in events for n in needles)
    build = docker_client(settings.build_socket, 120)
    try:
        archive = b"".join(build.images.get(ready["image"]).save())
    finally:
        build.close()
    assert b"[remote \"origin\"]" in archive and url.encode() in archive
    assert not any(n in archive for n in needles)
    for log in Path(settings.logs_dir).rglob("*"):
        if log.is_file():
            assert not any(n in log.read_bytes() for n in needles), log
    run_side = docker_client(settings.run_socket, 60)
    try:
        image = ready["image"].rsplit(":", 1)[0]
        containers = [c for c in run_side.containers.list()
                      if c.attrs["Config"]["Image"].split("@")[0] == image]
        assert len(containers) == 2
        for container in containers:
            code, out = container.exec_run(["sh", "-c", "cat /proc/[0-9]*/environ; env"])
            assert code == 0 and b"JUPYTERHUB_API_TOKEN" in out
            assert not any(n in out for n in needles)
    finally:
        run_side.close()
