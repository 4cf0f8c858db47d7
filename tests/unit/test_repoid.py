"""One repository, one name: bans can't be dodged by spelling, and quotas/images/metrics agree."""

from __future__ import annotations

import logging

import pytest
from starlette.requests import Request

from bindery.image_names import image_name
from bindery.metrics import OTHER_REPO, Metrics
from bindery.repoid import identify, normal_url
from bindery.settings import Settings
from bindery.web.door import Door
from bindery.service_log import JsonLines

SPELLINGS = [
    ("gh", "org/x/main"), ("gh", "ORG/X/main"), ("gh", "Org/x.git/main"),
    ("git", "https%3A%2F%2Fgithub.com%2Forg%2Fx.git/main"),
    ("git", "https%3A%2F%2FGitHub.com%2FOrg%2FX%2F/main"),
    ("git", "http%3A%2F%2Fgithub.com%3A80%2Forg%2Fx/main"),
    ("git", "https%3A%2F%2Fgithub.com%2F%2Forg%2Fx%252Egit/main"),
]


def request(client: str = "198.51.100.7") -> Request:
    return Request({"type": "http", "method": "GET", "path": "/build", "root_path": "",
                    "query_string": b"", "headers": [(b"host", b"b.test")],
                    "client": (client, 5000), "scheme": "http", "server": ("b.test", 80)})


@pytest.mark.parametrize("provider,spec", SPELLINGS)
async def test_a_ban_on_one_spelling_refuses_every_spelling(provider: str, spec: str):
    door = Door(Settings(banned_specs=[r"^gh/org/x/"]))
    refusal = await door.admit(request(), provider, spec)
    assert refusal is not None and refusal.status_code == 403
    door = Door(Settings(banned_specs=[r"^git/https://github\.com/org/x/"]))
    assert (await door.admit(request(), provider, spec)) is not None


@pytest.mark.parametrize("provider,spec", SPELLINGS)
async def test_an_allow_list_admits_every_spelling(provider: str, spec: str):
    door = Door(Settings(allowed_specs=[r"^gh/org/x/"]))
    assert await door.admit(request(), provider, spec) is None


async def test_other_repositories_are_not_caught():
    door = Door(Settings(banned_specs=[r"^gh/org/x/"]))
    for provider, spec in [("gh", "org/xy/main"), ("gh", "other/x/main"),
                           ("git", "https%3A%2F%2Fevil.example%2Forg%2Fx/main"),
                           ("gl", "org%2Fx/main")]:
        assert await door.admit(request(), provider, spec) is None, spec


def test_one_repository_one_key_one_image():
    settings = Settings()
    from bindery.providers import get_provider

    urls = {get_provider(settings, p, s).repo_url for p, s in SPELLINGS}
    identities = {identify(settings, u) for u in urls}
    assert len(urls) > 1 and len(identities) == 1
    identity = identities.pop()
    assert identity.url == "https://github.com/org/x" and identity.slug == "gh-org/x"
    names = {image_name("r:5000", "bindery/", identify(settings, u).slug or "", identify(settings, u).url,
                        "c" * 40) for u in urls}
    assert len(names) == 1
    # On a host that is not known to ignore case, case is part of the name.
    assert normal_url("https://git.example/Org/X.git/") == "https://git.example/Org/X"
    assert identify(settings, "https://gitlab.com/Group/Sub/Proj.git").names[-1] == "gl/group/sub/proj"


def test_metric_repo_label_is_bounded():
    metrics = Metrics(max_repo_labels=2)
    assert [metrics.repo_label(f"https://x/{i}") for i in range(100)] == [OTHER_REPO] * 100
    assert metrics.repo_label("https://x/a", admit=True) == "https://x/a"
    assert metrics.repo_label("https://x/b", admit=True) == "https://x/b"
    assert metrics.repo_label("https://x/c", admit=True) == OTHER_REPO
    assert metrics.repo_label("https://x/a") == "https://x/a"


def test_log_filter_redacts_tokens_in_uvicorn_access_records():
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("1.2.3.4:5", "GET", "/build/gh/o/r/main?build_token=abc.def&x=1",
                                "1.1", 200), None)
    line = JsonLines().format(record)
    assert "abc.def" not in line and "build_token=[redacted]&x=1" in line
