"""Pages and JSON of the UI routes, against a minimal app made of them."""

from __future__ import annotations

import asyncio
import json
import re

from pydantic import SecretStr
from starlette.testclient import TestClient

from bindery.web import tokens
from bindery.web.ui import form_spec, providers
from bindery.settings import Settings

from .conftest import launch_book, ui_app


def config_of(html: str, element_id: str) -> object:
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    assert match, element_id
    return json.loads(match.group(1))


def test_home_renders_form_with_providers(client: TestClient):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    for name in ("gh", "gl", "git", "gist"):
        assert f'<option value="{name}">' in r.text
    for field in ("provider", "repo", "ref", "path"):
        assert f'<label for="{field}"' in r.text or f'for="{field}"' in r.text
    assert 'name="pathtype" value="file"' in r.text and 'name="pathtype" value="url"' in r.text
    assert {p["name"] for p in config_of(r.text, "providers-data")} >= {"gh", "gl", "git", "gist"}
    assert config_of(r.text, "home-config") == {"publicUrl": "http://testserver/"}


def test_api_providers_json(client: TestClient):
    r = client.get("/api/providers")
    assert r.status_code == 200
    data = r.json()
    names = [p["name"] for p in data]
    assert names == ["gh", "gl", "git", "gist"]
    for p in data:
        assert {"label", "repo_label", "placeholder", "escape_repo", "default_ref"} <= p.keys()


def test_form_spec_per_provider():
    forms = {f.name: f for f in providers(Settings())}
    assert form_spec(forms["gh"], "https://github.com/org/repo.git", "") == "org/repo/HEAD"
    assert form_spec(forms["gh"], "org/repo/", "v1") == "org/repo/v1"
    assert form_spec(forms["gl"], "https://gitlab.com/group/sub/proj", "main") == \
        "group%2Fsub%2Fproj/main"
    assert form_spec(forms["git"], "https://x.org/r.git", "abc") == "https%3A%2F%2Fx.org%2Fr.git/abc"
    assert form_spec(forms["gist"], "https://gist.github.com/user/1234", "") == "user/1234/HEAD"


def test_form_without_javascript_redirects_to_launch_page(client: TestClient):
    r = client.get("/launch", params={"provider": "gh", "repo": "org/repo", "ref": "main",
                                      "path": "a.ipynb", "pathtype": "file"},
                   follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/v2/gh/org/repo/main?labpath=a.ipynb"
    r = client.get("/launch", params={"provider": "gh", "repo": ""}, follow_redirects=False)
    assert r.headers["location"] == "/"


def test_launch_page_points_at_the_stream_and_keeps_escapes(client: TestClient):
    r = client.get("/v2/git/https%3A%2F%2Fx.org%2Fr.git/HEAD?filepath=README.md")
    assert r.status_code == 200
    config = config_of(r.text, "launch-config")
    assert config["buildUrl"] == "/build/git/https%3A%2F%2Fx.org%2Fr.git/HEAD"
    assert config["urlpath"] == "tree/README.md"
    assert set(config["icons"]) == {"building", "ready", "failed"}
    assert 'id="favicon"' in r.text and "favicon-building.svg" in r.text
    assert 'id="progress"' in r.text and 'id="log"' in r.text


def test_launch_page_escapes_hostile_specs(client: TestClient):
    r = client.get("/v2/gh/o/r/%3C%2Fscript%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert "<script>alert(1)" not in r.text


def test_launch_page_embeds_a_fresh_bound_build_token():
    client = TestClient(ui_app(build_token_secret=SecretStr("k")))
    r = client.get("/v2/gh/org/repo/main")
    assert r.headers["cache-control"] == "no-store"
    url = config_of(r.text, "launch-config")["buildUrl"]
    assert url.startswith("/build/gh/org/repo/main?build_token=")
    token = url.split("build_token=", 1)[1]
    tokens.verify(b"k", token, "gh", "org/repo/main", "http://testserver")


def test_badges_are_svg_and_cacheable(client: TestClient):
    for name in ("badge.svg", "badge_logo.svg"):
        r = client.get(f"/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
        assert "max-age=" in r.headers["cache-control"]
        assert int(re.search(r"max-age=(\d+)", r.headers["cache-control"]).group(1)) >= 86400
        assert r.text.lstrip().startswith("<svg")


def test_static_assets_served(client: TestClient):
    for name in ("launch.js", "home.js", "spec.js", "redirect.js", "style.css",
                 "favicon-building.svg", "favicon-ready.svg", "favicon-failed.svg"):
        assert client.get(f"/static/{name}").status_code == 200, name


def test_expired_server_link_answers_424_and_offers_relaunch():
    book = launch_book()
    asyncio.run(book.remember("u-abc", "gh", "org/repo/main"))
    client = TestClient(ui_app(book))
    r = client.get("/user/u-abc/lab/tree/a.ipynb", headers={"Accept": "text/html"})
    assert r.status_code == 424 and "Binder not found" in r.text
    assert 'href="/v2/gh/org/repo/main?urlpath=lab%2Ftree%2Fa.ipynb"' in r.text
    r = client.get("/user/u-abc/api/status", headers={"Accept": "application/json"})
    assert r.status_code == 424 and r.json()["relaunch_url"] == "/v2/gh/org/repo/main"
    r = client.get("/binder-not-found", params={"user": "u-abc"},
                   headers={"Accept": "text/html"})
    assert r.status_code == 424 and "/v2/gh/org/repo/main" in r.text


def test_unknown_server_still_explains_itself(client: TestClient):
    r = client.get("/user/nobody/", headers={"Accept": "text/html"})
    assert r.status_code == 424 and "Binder not found" in r.text and "home page" in r.text
    r = client.get("/user/%3Cb%3Ex/", headers={"Accept": "text/html"})
    assert "<b>x" not in r.text


async def test_launch_records_are_bounded_by_their_lifetime():
    book = launch_book(keep_seconds=0.3)
    await book.remember("a", "gh", "o/r/main")
    assert (await book.lookup("a")).launch_path == "v2/gh/o/r/main"
    await asyncio.sleep(0.5)  # the record's lifetime is what is under test
    assert await book.lookup("a") is None
