"""Cross-origin access to bindery's web service (the cors_allow_origin setting): off by default,
as in BinderHub (only /versions is readable from any page), and exactly the configured origin when
set, preflights included. The stack-wide behaviour (launched servers, Thebe) is in
tests/web/test_thebe.py."""

from __future__ import annotations

from starlette.testclient import TestClient

from bindery.settings import Settings
from bindery.stack.jupyterhub import cross_origin_args
from bindery.web.app import create_app

BOOK = "https://book.example.org"
PREFLIGHT = {"Origin": BOOK, "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "cache-control"}


def client(tmp_path, **settings) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path, **settings)))


def test_off_by_default(tmp_path):
    web = client(tmp_path)
    assert web.get("/versions", headers={"Origin": BOOK}).headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in web.get("/badge.svg", headers={"Origin": BOOK}).headers
    preflight = web.options("/build/gh/org/repo/main", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in preflight.headers
    assert cross_origin_args("") == []


def test_the_configured_origin_and_no_other(tmp_path):
    web = client(tmp_path, cors_allow_origin=BOOK)
    for path in ("/versions", "/badge.svg"):
        assert web.get(path, headers={"Origin": BOOK}).headers["access-control-allow-origin"] == BOOK
        other = web.get(path, headers={"Origin": "https://elsewhere.example.org"})
        assert "access-control-allow-origin" not in other.headers
    preflight = web.options("/build/gh/org/repo/main", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == BOOK
    refused = web.options("/build/gh/org/repo/main",
                          headers={**PREFLIGHT, "Origin": "https://elsewhere.example.org"})
    assert refused.status_code == 400


def test_launched_servers_get_jupyters_allow_origin():
    assert cross_origin_args(BOOK) == [f"--ServerApp.allow_origin={BOOK}"]
    # '*' alone leaves single files blocked in Jupyter Server; the pattern opens them too.
    assert cross_origin_args("*") == ["--ServerApp.allow_origin=*", "--ServerApp.allow_origin_pat=.*"]
