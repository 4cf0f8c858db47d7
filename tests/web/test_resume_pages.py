"""A resume link's pages without a stack: the launch page follows /build/resume/<secret> and shows the
link, its download and delete; wrong secrets get 404s with a message (the stack test,
tests/test_homes.py, drives the real thing)."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.testclient import TestClient

from bindery.launches.homes import Homes
from bindery.settings import Settings
from bindery.state.sqlite_store import SQLiteStore
from bindery.web import home_pages
from tests.web.test_ui import config_of

SECRET = "s3cr3t_" + "x" * 40


def test_the_resume_page_follows_its_stream_and_offers_download_and_delete(client: TestClient):
    r = client.get(f"/v2/resume/{SECRET}?ref=main")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    config = config_of(r.text, "launch-config")
    assert config["buildUrl"] == f"/build/resume/{SECRET}?ref=main"
    resume = config["resume"]
    assert resume["url"].endswith(f"/v2/resume/{SECRET}")
    assert resume["home_download_url"].endswith(f"/resume/{SECRET}/home.tar.gz")
    assert resume["home_delete_url"].endswith(f"/resume/{SECRET}/delete")
    assert 'id="resume-download"' in r.text and 'id="resume-delete"' in r.text


def test_unknown_or_malformed_secrets_get_a_404_with_a_message(tmp_path: Path):
    homes = Homes(SQLiteStore(tmp_path / "state.sqlite"), 86400.0)
    client = TestClient(Starlette(routes=home_pages.routes(Settings(data_dir=tmp_path), lambda: homes)))
    for secret in (SECRET, "short", "x" * 43):
        for method, path in (("GET", "home.tar.gz"), ("POST", "delete")):
            r = client.request(method, f"/resume/{secret}/{path}")
            assert r.status_code == 404 and "resume link" in r.json()["message"]
