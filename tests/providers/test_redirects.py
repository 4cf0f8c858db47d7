"""Moved repositories (renamed, transferred: the old URL answers with a redirect) resolve and clone
from where they live now, against a real smart-HTTP git server; a redirect is followed only where
the outbound policy allows, one checked hop at a time, and never by git itself."""

from __future__ import annotations

import asyncio
import subprocess
from urllib.parse import quote

import pytest

from bindery.events import LaunchError
from bindery.git_commands import git_env
from bindery.providers import get_provider
from bindery.providers.redirects import MAX_HOPS, next_url
from tests.providers.test_refs import allowed
from tests.streams import collect, git_spec, open_server


@pytest.fixture
def moved_repo(git_server, http_git):
    """A repository on the smart-HTTP server and an old URL that 301s to it: (old URL, new URL,
    its main commit). The old path is removed from the server's moves after the test."""
    path, _ = git_server.create("moved", {"README": "I live here now"})
    commit = git_server.git(git_server.root / path, "rev-parse", "main")
    old = f"/{path}-old-name"
    http_git.moved[old] = f"{http_git.base_url}/{path}"
    try:
        yield f"{http_git.base_url}{old}", f"{http_git.base_url}/{path}", commit
    finally:
        http_git.moved.pop(old, None)


def provider_for(url: str, ref: str, tmp_path):
    return get_provider(allowed(data_dir=tmp_path), "git", f"{quote(url, safe='')}/{ref}")


def clone_as_the_build_does(provider, tmp_path) -> str:
    """`git clone` of the person's URL with the provider's git config (what the build's git gets)."""
    target = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--", provider.repo_url, str(target)],
                   env=git_env(provider.git_config), check=True, capture_output=True, timeout=60)
    return subprocess.run(["git", "-C", str(target), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


async def test_a_moved_repository_resolves_a_branch_and_clones_from_its_new_home(
        moved_repo, tmp_path):
    old, new, commit = moved_repo
    provider = provider_for(old, "main", tmp_path)
    assert await provider.resolve() == commit
    assert provider.moved_to == new
    assert provider.repo_url == old  # the person's URL stays the repository's name
    assert clone_as_the_build_does(provider, tmp_path) == commit


async def test_without_following_git_alone_refuses_the_redirect(moved_repo, tmp_path):
    """What the provider's config adds is what makes the clone work: git's own settings refuse."""
    old, _, _ = moved_repo
    provider = provider_for(old, "main", tmp_path)
    await provider.check_outbound()
    with pytest.raises(subprocess.CalledProcessError) as refused:
        clone_as_the_build_does(provider, tmp_path)
    assert b"301" in refused.value.stderr


async def test_a_full_commit_of_a_moved_repository_is_located_before_its_build(
        moved_repo, tmp_path):
    """A 40-hex ref skips ls-remote; the build step calls locate() before the clone."""
    old, new, commit = moved_repo
    provider = provider_for(old, commit, tmp_path)
    assert await provider.resolve() == commit
    assert provider.moved_to is None and not provider.located
    await provider.locate()
    assert provider.moved_to == new
    assert clone_as_the_build_does(provider, tmp_path) == commit


async def test_a_repository_that_did_not_move_needs_no_config(git_server, http_git, tmp_path):
    path, _ = git_server.create("stays", {"README": "here"})
    provider = provider_for(f"{http_git.base_url}/{path}", "main", tmp_path)
    await provider.resolve()
    assert provider.located and provider.moved_to is None
    before = provider.git_config
    await provider.locate()  # once located, no second look
    assert provider.git_config == before
    assert not any(key.startswith("url.") for key, _ in provider.git_config)


async def test_two_hops_are_followed_and_a_loop_is_not(moved_repo, http_git, tmp_path):
    old, new, commit = moved_repo
    older = old.removeprefix(http_git.base_url) + "-even-older"
    http_git.moved[older] = old
    loop_a, loop_b = "/loop-a", "/loop-b"
    http_git.moved.update({loop_a: f"{http_git.base_url}{loop_b}",
                           loop_b: f"{http_git.base_url}{loop_a}"})
    try:
        provider = provider_for(f"{http_git.base_url}{older}", "main", tmp_path)
        assert await provider.resolve() == commit
        assert provider.moved_to == new
        with pytest.raises(LaunchError) as looping:
            await provider_for(f"{http_git.base_url}{loop_a}", "main", tmp_path).resolve()
        assert f"more than {MAX_HOPS} times" in looping.value.message
        assert looping.value.status_code == 404
    finally:
        for path in (older, loop_a, loop_b):
            http_git.moved.pop(path, None)


async def test_a_redirect_to_a_private_address_is_refused_before_any_connection(
        http_git, tmp_path):
    connections = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    blocked = await asyncio.start_server(count, "127.0.0.2", 0)  # allowed() admits 127.0.0.1 only
    port = blocked.sockets[0].getsockname()[1]
    http_git.moved["/to-private"] = f"http://127.0.0.2:{port}/org/anything"
    try:
        with pytest.raises(LaunchError) as refused:
            await provider_for(f"{http_git.base_url}/to-private", "main", tmp_path).resolve()
        assert refused.value.status_code == 403
        assert "redirects to http://127.0.0.2" in refused.value.message
        assert "non-public network" in refused.value.message
        assert connections == []
    finally:
        http_git.moved.pop("/to-private", None)
        blocked.close()


async def test_a_redirect_to_a_url_with_credentials_is_refused(http_git, tmp_path):
    http_git.moved["/with-credentials"] = "http://someone:secret@127.0.0.1:1/org/repo"
    try:
        with pytest.raises(LaunchError) as refused:
            await provider_for(f"{http_git.base_url}/with-credentials", "main", tmp_path).resolve()
        assert "must not contain credentials" in refused.value.message
        assert "secret" not in refused.value.message
    finally:
        http_git.moved.pop("/with-credentials", None)


@pytest.mark.parametrize("repo, status, location, expected", [
    ("https://h/a", 301, "https://h/b/info/refs?service=git-upload-pack", "https://h/b"),
    ("https://h/a", 302, "/b.git/info/refs?service=git-upload-pack", "https://h/b.git"),
    ("http://h/a", 308, "https://other/b/info/refs?service=git-upload-pack", "https://other/b"),
    ("https://h/a", 200, None, None),
    ("https://h/a", 404, None, None),
])
def test_where_a_redirect_leads(repo, status, location, expected):
    assert next_url(repo, status, location) == expected


@pytest.mark.parametrize("location, words", [
    ("http://h/b/info/refs?service=git-upload-pack", "never from https to http"),
    ("ftp://h/b/info/refs?service=git-upload-pack", "only http(s)"),
    ("https://h/login?next=/a", "not a git repository's address"),
    ("", "redirect to nowhere"),
])
def test_redirects_git_would_not_follow_are_refused_with_a_reason(location, words):
    with pytest.raises(LaunchError) as refused:
        next_url("https://h/a", 302, location)
    assert words in refused.value.message


@pytest.mark.parametrize("by", ["branch", "full commit"])
async def test_a_moved_repository_builds_and_launches_through_the_service(
        by, stack, base_image, git_server, http_git):
    """The real service: resolve (ls-remote meets the redirect, or a 40-hex ref skips it and the
    build step locates the repository), the build's clone from the new home, a server at the end."""
    path, _ = git_server.create("moved-launch", {"Dockerfile": f"FROM {base_image}\n"})
    commit = git_server.git(git_server.root / path, "rev-parse", "main")
    old = f"/{path}-renamed"
    http_git.moved[old] = f"{http_git.base_url}/{path}"
    try:
        events = await collect(stack, "git", git_spec(f"{http_git.base_url}{old}",
                                                      "main" if by == "branch" else commit))
    finally:
        http_git.moved.pop(old, None)
    assert [e.phase for e in events][-1] == "ready", events[-1]
    assert "building" in [e.phase for e in events]
    ready = events[-1].data()
    assert ready["repo_url"] == f"{http_git.base_url}{old}"  # the person's URL names it
    assert commit in ready["binder_persistent_request"]
    assert (await open_server(events[-1])).status_code == 200


def test_the_probe_connects_to_the_checked_address_under_the_repositorys_name():
    """https: the URL names the pinned address, TLS is verified for the host (SNI), Host is the
    host's; an address literal is used as it is."""
    import ipaddress

    from bindery.outbound import Pin
    from bindery.providers.redirects import pinned_request

    pin = Pin("https", "example.org", "example.org", 443, ipaddress.ip_address("2001:db8::5"))
    url, headers, extensions = pinned_request("https://example.org/a/b.git/info/refs?x=1", pin)
    assert url == "https://[2001:db8::5]:443/a/b.git/info/refs?x=1"
    assert headers == {"Host": "example.org"} and extensions == {"sni_hostname": "example.org"}
    pin = Pin("http", "h.test:8080", "h.test", 8080, ipaddress.ip_address("203.0.113.9"))
    assert pinned_request("http://h.test:8080/r", pin) == (
        "http://203.0.113.9:8080/r", {"Host": "h.test:8080"}, {})
    literal = Pin("http", "203.0.113.9", "203.0.113.9", 80, None)
    assert pinned_request("http://203.0.113.9/r", literal) == ("http://203.0.113.9/r", {}, {})


@pytest.mark.parametrize("by", ["branch", "full commit"])
async def test_bans_and_allow_lists_judge_where_a_repository_moved(by, stack, git_server, http_git):
    """An old name that redirects to a banned repository (or off the allow list) is refused with
    the operator's message once the move is known (resolution, or the build step's locate for a
    40-hex ref), before anything is built."""
    from tests.providers.test_links_stack import run

    path, _ = git_server.create("moved-banned", {"README": "banned where it lives now"})
    commit = git_server.git(git_server.root / path, "rev-parse", "main")
    old = f"/{path}-innocent-name"
    http_git.moved[old] = f"{http_git.base_url}/{path}"
    spec = git_spec(f"{http_git.base_url}{old}", "main" if by == "branch" else commit)
    new_name = path.rsplit("/", 1)[1]
    try:
        for rules, words in [
            ({"banned_specs": [new_name + "$", new_name + "/"], "banned_message": "Banned here."},
             "Banned here."),
            ({"allowed_specs": ["innocent-name"]}, "allow list"),
        ]:
            events = await run(stack.model_copy(update=rules), "git", spec)
            assert events[-1].phase == "failed", events[-1]
            assert events[-1].data()["status_code"] == 403
            assert "has moved to" in events[-1].message and words in events[-1].message
            assert "building" not in [e.phase for e in events]
    finally:
        http_git.moved.pop(old, None)
