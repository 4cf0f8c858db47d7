"""Refs as people write them, resolved against real git servers (git daemon and smart HTTP) and a
local server speaking GitHub's and GitLab's commit APIs; every count is the servers' own."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections import defaultdict
from urllib.parse import quote

import pytest

from bindery.events import LaunchError
from bindery.web.commands import parse_target
from bindery.providers import get_provider
from bindery.providers import shortsha
from bindery.providers.refcache import RefCache
from bindery.providers.shortsha import AbbreviatedShas
from bindery.settings import Settings
from tests.conftest import TEST_ALLOWED_NETWORKS
from tests.providers.apiservers import github_api, gitlab_api
from tests.providers.conftest import many_commits


def allowed(**overrides) -> Settings:
    """Settings that let bindery reach the test's git and API servers on 127.0.0.1."""
    return Settings(**{"repo_allowed_networks": TEST_ALLOWED_NETWORKS, **overrides})


def settings(tmp_path, **overrides) -> Settings:
    return allowed(data_dir=tmp_path, **overrides)


@pytest.fixture
def refs_repo(git_server):
    """A repository with a branch, an annotated tag, and 1200 commits (so 4-digit prefixes of
    commits collide); (path, {name: sha}, all commit shas)."""
    path, _ = git_server.create("refs", {"README": "hi"})
    repo = git_server.root / path
    many_commits(repo, 1200)
    git_server.git(repo, "branch", "dev", "main~5")
    git_server.git(repo, "tag", "-a", "v1.0", "-m", "release", "main~10")
    shas = git_server.git(repo, "rev-list", "--all").split()
    named = {n: git_server.git(repo, "rev-parse", f"{n}^{{commit}}")
             for n in ("main", "dev", "v1.0", "HEAD")}
    return path, named, shas


def collision(shas: list[str], digits: int = 4) -> str:
    groups = defaultdict(list)
    for sha in shas:
        groups[sha[:digits]].append(sha)
    return next(p for p, group in groups.items() if len(group) > 1)


async def test_every_kind_of_ref_over_the_git_protocol(tmp_path, http_git, refs_repo):
    path, named, shas = refs_repo
    url = f"{http_git.base_url}/{path}"
    cache = RefCache(settings(tmp_path))
    try:
        async def resolve(ref: str) -> str:
            return await cache.resolve(get_provider(allowed(), "git",
                                                    f"{quote(url, safe='')}/{ref}"))
        for name, sha in named.items():
            assert await resolve(name) == sha, name
        assert await resolve(shas[300]) == shas[300]  # a full SHA, not on any ref's tip
        # abbreviated SHAs of several lengths, of commits deep in history
        target = shas[700]
        for digits in (7, 12, 20, 39):
            assert await resolve(target[:digits]) == target
        unique4 = next(s for s in shas if sum(o.startswith(s[:4]) for o in shas) == 1)
        assert await resolve(unique4[:4]) == unique4
        ambiguous = collision(shas)
        with pytest.raises(LaunchError) as info:
            await resolve(ambiguous)
        assert info.value.status_code == 400
        assert "ambiguous" in info.value.message and "more of the commit's digits" in \
            info.value.message
        with pytest.raises(LaunchError) as info:
            await resolve("0000000")
        assert info.value.status_code == 404 and "Could not find ref '0000000'" in info.value.message
        # The cache holds commits and tags only (treeless): no trees or blobs were transferred.
        kinds = subprocess.run(["git", "-C", str(cache.tools.shas.folder(url)), "cat-file",
                                "--batch-all-objects", "--batch-check=%(objecttype)"],
                               capture_output=True, text=True, check=True).stdout.split()
        assert set(kinds) == {"commit", "tag"} and kinds.count("commit") == len(shas)
    finally:
        await cache.aclose()


async def test_a_crowd_costs_one_resolution(tmp_path, http_git, refs_repo):
    path, named, shas = refs_repo
    url = f"{http_git.base_url}/{path}"
    cache = RefCache(settings(tmp_path, ref_cache_seconds=300))
    try:
        before = http_git.ref_advertisements(path)
        provider = lambda ref: get_provider(allowed(data_dir=tmp_path), "git",  # noqa: E731
                                            f"{quote(url, safe='')}/{ref}")
        results = await asyncio.gather(*(cache.resolve(provider("dev")) for _ in range(40)))
        assert set(results) == {named["dev"]}
        assert http_git.ref_advertisements(path) - before == 1  # one ls-remote for 40 requests
        # abbreviated: one ls-remote (not a branch name) plus one clone, for 40 requests
        short = shas[500][:8]
        before = http_git.ref_advertisements(path)
        results = await asyncio.gather(*(cache.resolve(provider(short)) for _ in range(40)))
        assert set(results) == {shas[500]}
        assert cache.tools.shas.fetches == 1
        assert http_git.ref_advertisements(path) - before == 2
        # later requests within the lifetime: no server contact at all
        before = http_git.ref_advertisements(path)
        assert await cache.resolve(provider("dev")) == named["dev"]
        assert await cache.resolve(provider(short)) == shas[500]
        assert http_git.ref_advertisements(path) == before
        assert cache.resolutions == 2
    finally:
        await cache.aclose()


async def test_a_lifetime_of_zero_resolves_every_time(tmp_path, http_git, refs_repo, git_server):
    path, named, _ = refs_repo
    url = f"{http_git.base_url}/{path}"
    cache = RefCache(settings(tmp_path, ref_cache_seconds=0))
    try:
        spec = f"{quote(url, safe='')}/main"
        assert await cache.resolve(get_provider(allowed(), "git", spec)) == named["main"]
        new = git_server.commit(git_server.root / path, {"later.txt": "x"}, "later")
        assert await cache.resolve(get_provider(allowed(), "git", spec)) == new
        assert cache.resolutions == 2
    finally:
        await cache.aclose()


async def test_github_and_gitlab_apis_with_etags(tmp_path, http_git, refs_repo):
    path, named, shas = refs_repo
    org, name = path.split("/")
    commits = {path: {"main": named["main"], "dev": named["dev"], **{s: s for s in shas}}}
    github, gitlab = github_api(commits), gitlab_api(commits)
    try:
        s = settings(tmp_path, github_url=http_git.base_url, github_api_url=github.url,
                     gitlab_url=http_git.base_url, gitlab_api_url=f"{gitlab.url}/api/v4",
                     ref_cache_seconds=0)
        cache = RefCache(s)
        try:
            git_before = http_git.ref_advertisements(path)
            gh = lambda ref: get_provider(s, "gh", f"{org}/{name}/{ref}")  # noqa: E731
            assert await cache.resolve(gh("dev")) == named["dev"]
            assert await cache.resolve(gh(shas[800][:7])) == shas[800]
            # Lifetime 0: the next resolution asks again, conditionally, and gets 304.
            assert await cache.resolve(gh("dev")) == named["dev"]
            assert github.not_modified == 1
            assert github.requests[f"/repos/{path}/commits/dev"] == 2
            with pytest.raises(LaunchError) as info:
                await cache.resolve(gh(collision(shas)))
            assert info.value.status_code == 404 and "No commit found" in info.value.message
            gl = get_provider(s, "gl", f"{quote(path, safe='')}/main")
            assert await cache.resolve(gl) == named["main"]
            assert gitlab.requests[f"/api/v4/projects/{quote(path, safe='')}/repository/commits/"
                                   "main"] == 1
            assert http_git.ref_advertisements(path) == git_before  # the APIs did it all
            # An API outage falls back to the git protocol.
            github.failing = True
            assert await cache.resolve(gh("dev")) == named["dev"]
            assert http_git.ref_advertisements(path) == git_before + 1
        finally:
            await cache.aclose()
    finally:
        github.stop()
        gitlab.stop()


async def test_private_repository_needs_its_token_and_never_shows_it(tmp_path, private_git,
                                                                      refs_repo):
    from tests.providers.conftest import SECRET
    path, named, shas = refs_repo
    url = f"{private_git.base_url}/{path}"
    spec = f"{quote(url, safe='')}/{shas[900][:9]}"
    cache = RefCache(settings(tmp_path))
    try:
        with pytest.raises(LaunchError) as info:  # no credential configured: a clear refusal
            await cache.resolve(get_provider(allowed(), "git", f"{quote(url, safe='')}/main"))
        assert info.value.status_code == 404 and "Could not reach the repository" in \
            info.value.message
        wrong = allowed(data_dir=tmp_path, git_credentials={private_git.base_url + "/": "nope"})
        with pytest.raises(LaunchError) as info:
            await RefCache(wrong, cache.tools).resolve(get_provider(wrong, "git", spec))
        assert "nope" not in info.value.message
        good = allowed(data_dir=tmp_path, git_credentials={private_git.base_url + "/": SECRET})
        assert await RefCache(good, cache.tools).resolve(get_provider(good, "git", spec)) == \
            shas[900]
        folder = cache.tools.shas.folder(url)
        assert SECRET not in (folder / "config").read_text()
        assert SECRET not in repr(good) and SECRET not in str(good.model_dump())
    finally:
        await cache.aclose()


def test_two_part_gist_and_launch_ref():
    s = Settings(gist_url="https://gist.example")
    gist = get_provider(s, "gist", "someone/0123abcd")
    assert gist.repo_url == "https://gist.example/0123abcd" and gist.unresolved_ref == "HEAD"
    assert gist.slug == "gist-someone-0123abcd"  # this raised ValueError on every launch
    gist.commit = "a" * 40
    assert gist.persistent_spec() == f"someone/0123abcd/{'a' * 40}"
    gh = get_provider(s, "gh", "org/repo/feature/x")
    gh.commit = "b" * 40
    assert gh.persistent_spec() == f"org/repo/{'b' * 40}"
    assert parse_target("gh/org/repo", "dev") == ("gh", "org/repo/dev")  # was org/dev
    assert parse_target("gh/org/repo/main", "dev") == ("gh", "org/repo/dev")
    assert parse_target("gist/someone/0123abcd", "v2") == ("gist", "someone/0123abcd/v2")
    assert parse_target("gl/group%2Fproject", "feature/x") == ("gl", "group%2Fproject/feature%2Fx")
    assert parse_target("gh/org/repo/feature/x", None) == ("gh", "org/repo/feature/x")
    with pytest.raises(SystemExit):
        parse_target("zenodo/10.5281/zenodo.1", "v1")


def test_credentials_reach_the_web_service_process_intact(tmp_path, monkeypatch):
    """`bindery up` hands settings to the web process as BINDERY_* variables: tokens inside
    git_credentials must arrive as themselves, not as SecretStr's '**********'."""
    from bindery.providers.credentials import git_auth_config
    from bindery.stack.web_service import settings_env
    from tests.providers.conftest import SECRET
    prefix = "https://git.example.org/team/"
    env = settings_env(Settings(data_dir=tmp_path, git_credentials={prefix: SECRET}))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.git_credentials[prefix].get_secret_value() == SECRET
    (key, value), = git_auth_config(child, prefix + "repo.git")
    assert key == f"http.{prefix}.extraHeader" and value.startswith("Authorization: Basic ")
    assert git_auth_config(child, "https://git.example.org/other/repo.git") == ()


async def test_a_persons_token_resolves_for_them_alone(tmp_path, private_git, git_server):
    """Under person_git_credentials a resolution with a person's token is theirs: another person
    or an anonymous request asks git again (and is refused); a full commit is checked with git too,
    so knowing it is not enough. The operator's token for that host is never sent."""
    from pydantic import SecretStr

    from tests.providers.conftest import SECRET
    path, _ = git_server.create("person", {"README": "mine"})
    sha = git_server.git(git_server.root / path, "rev-parse", "HEAD")
    url = f"{private_git.base_url}/{path}"
    prefix = private_git.base_url + "/"
    s = settings(tmp_path, person_git_credentials={prefix: "access_token"},
                 git_credentials={prefix: SecretStr("operator-token")})  # never sent there
    cache = RefCache(s)
    before = len(private_git.authorization_seen)

    def request(ref: str, owner: str = "", token: str | None = None):
        provider = get_provider(s, "git", f"{quote(url, safe='')}/{ref}")
        provider.credential_owner = owner
        provider.person_credential = (prefix, SecretStr(token)) if token else None
        return provider

    try:
        assert await cache.resolve(request("main", "carol", SECRET)) == sha
        for ref in ("main", sha):  # cached for carol only; a full commit is no way round
            with pytest.raises(LaunchError) as info:
                await cache.resolve(request(ref))
            assert info.value.status_code == 404
            with pytest.raises(LaunchError):
                await cache.resolve(request(ref, "dave"))
        assert await cache.resolve(request(sha, "carol", SECRET)) == sha
        sent = [a for a in private_git.authorization_seen[before:] if a]
        carols = base64.b64encode(f"x-access-token:{SECRET}".encode()).decode()
        assert sent and set(sent) == {f"Basic {carols}"}  # carol's token, and nothing else
    finally:
        await cache.aclose()


async def test_the_commit_cache_keeps_within_its_bytes(tmp_path, git_server):
    """The abbreviated-SHA cache (treeless clones) is bounded by bytes as well as by count: the
    least recently used clones go; one removed is cloned again, transparently, when next asked."""
    repos = []
    for name in ("alpha", "beta", "gamma"):
        path, url = git_server.create(f"cache-{name}", {"README": name})
        many_commits(git_server.root / path, 200)
        repos.append((url, git_server.git(git_server.root / path, "rev-parse", "main")))
    root = tmp_path / "commits"
    probe = AbbreviatedShas(root, max_repos=100, timeout=60)
    assert await probe.find(repos[0][0], repos[0][1][:10]) == repos[0][1]
    one = shortsha._bytes(probe.folder(repos[0][0]))
    assert one > 0

    shas = AbbreviatedShas(root, max_repos=100, timeout=60, max_bytes=int(2.5 * one))  # two fit
    for url, head in repos:
        assert await shas.find(url, head[:10]) == head
        held = sum(shortsha._bytes(f) for f in root.iterdir())
        assert held <= shas.max_bytes, (held, shas.max_bytes)
    kept = {f.name for f in root.iterdir()}
    assert kept == {shas.folder(repos[1][0]).name, shas.folder(repos[2][0]).name}  # alpha: oldest
    assert shas.evicted == 1
    fetches = shas.fetches
    assert await shas.find(repos[0][0], repos[0][1][:10]) == repos[0][1]  # cloned again
    assert shas.fetches == fetches + 1
    assert {f.name for f in root.iterdir()} == {shas.folder(repos[2][0]).name,
                                                shas.folder(repos[0][0]).name}
