"""Input validation and naming: pure functions, no stack needed."""

from __future__ import annotations

import re

import pytest

from bindery.events import LaunchError
from bindery.image_names import image_name, split_image
from bindery.web.commands import parse_target
from bindery.providers import get_provider
from bindery.settings import Settings
from bindery.spec import validate_ref, validate_repo_url

SETTINGS = Settings(github_url="https://github.example", gitlab_url="https://gitlab.example",
                    gist_url="https://gist.example")
SCHEMES = ["https", "http", "git"]
# OCI distribution spec: repository path components and tags.
REPO_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


@pytest.mark.parametrize("ref", ["main", "v1.0", "feature/x", "a" * 40, "HEAD", "release-2024.1"])
def test_good_refs(ref):
    assert validate_ref(ref) == ref


@pytest.mark.parametrize("ref", ["", "-x", "--upload-pack=touch /tmp/x", "a..b", "a b", "x\x00",
                                 "refs/heads/../x", "x.lock", "x/", "@{-1}", "a" * 300, "é"])
def test_bad_refs(ref):
    with pytest.raises(LaunchError) as info:
        validate_ref(ref)
    assert info.value.status_code == 400


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ext::sh -c touch% /tmp/pwn",
                                 "ssh://git@host/x", "git@host:x", "-oProxyCommand=x",
                                 "https://user:pw@host/x", "https://host/x?y=1", "https://",
                                 "https://host/x y", "https://hóst/x", "fd::1"])
def test_bad_urls(url):
    with pytest.raises(LaunchError) as info:
        validate_repo_url(url, SCHEMES)
    assert info.value.status_code == 400


def test_providers_build_urls_from_configured_servers():
    assert get_provider(SETTINGS, "gh", "org/repo/main").repo_url == "https://github.example/org/repo"
    gl = get_provider(SETTINGS, "gl", "group%2Fsub%2Fproject/v1")
    assert (gl.repo_url, gl.unresolved_ref) == ("https://gitlab.example/group/sub/project", "v1")
    gist = get_provider(SETTINGS, "gist", "user/abc123")
    assert (gist.repo_url, gist.unresolved_ref) == ("https://gist.example/abc123", "HEAD")
    git = get_provider(SETTINGS, "git", "https%3A%2F%2Fh.example%2Fr.git/feature/x")
    assert (git.repo_url, git.unresolved_ref) == ("https://h.example/r.git", "feature/x")


def test_local_provider_only_when_allowed(tmp_path):
    with pytest.raises(LaunchError):
        get_provider(SETTINGS, "local", str(tmp_path))
    assert get_provider(SETTINGS, "local", str(tmp_path), allow_local=True).repo_url == str(tmp_path)


@pytest.mark.parametrize("slug", ["gh-Org-Repo", "git-h.example/a/b.git", "-lead", "x" * 200,
                                  "gl-group/sub", "ünï", "a__b"])
def test_image_names_are_registry_safe_and_deterministic(slug):
    sha = "a" * 40
    name = image_name("127.0.0.1:5000", "bindery/", slug, "https://h/x", sha)
    assert name == image_name("127.0.0.1:5000", "bindery/", slug, "https://h/x", sha)
    host, repo, tag = split_image(name)
    assert host == "127.0.0.1:5000" and tag == sha
    assert REPO_RE.match(repo), repo
    assert TAG_RE.match(tag)
    assert image_name("127.0.0.1:5000", "bindery/", slug, "https://h/y", sha) != name


def test_cli_targets(tmp_path):
    assert parse_target("https://h.example/r.git", None) == ("git", "https%3A%2F%2Fh.example%2Fr.git/HEAD")
    assert parse_target("git://h/r", "v1") == ("git", "git%3A%2F%2Fh%2Fr/v1")
    assert parse_target(str(tmp_path), None) == ("local", str(tmp_path))
    assert parse_target("gh/org/repo/main", None) == ("gh", "org/repo/main")
    assert parse_target("gh/org/repo/main", "dev") == ("gh", "org/repo/dev")


def test_every_setting_has_help_text():
    from bindery.settings.commands import describe

    rows = describe(Settings())
    assert len(rows) > 30
    missing = [r["name"] for r in rows if len(str(r["help"])) < 10]
    assert missing == []
    shown = describe(Settings(hub_api_token="s3cret-token"))
    assert "s3cret-token" not in repr(shown)
