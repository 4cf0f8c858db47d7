"""Where the browser lands on ready; the same cases hold for static/redirect.js (test_js.py)."""

from __future__ import annotations

import pytest

from bindery.web.urlpath import launch_urlpath, server_redirect

URLPATH_CASES = [
    ({}, ""),
    ({"urlpath": "lab"}, "lab"),
    ({"urlpath": "/lab/tree/a.ipynb"}, "lab/tree/a.ipynb"),
    ({"labpath": "notebooks/a b.ipynb"}, "doc/tree/notebooks/a%20b.ipynb"),
    ({"labpath": "dir/"}, "doc/tree/dir"),
    ({"filepath": "README.md"}, "tree/README.md"),
    ({"urlpath": "lab", "labpath": "x.ipynb"}, "doc/tree/x.ipynb"),
    ({"labpath": "x.ipynb", "filepath": "y.md"}, "doc/tree/x.ipynb"),
]

# (server url, urlpath, token) -> expected; shared with the JS test
REDIRECT_CASES = [
    ("http://hub.test/user/u1/", "", "tok", "http://hub.test/user/u1/?token=tok"),
    ("http://hub.test/user/u1", "lab", "tok", "http://hub.test/user/u1/lab?token=tok"),
    ("http://hub.test/user/u1/", "/doc/tree/a%20b.ipynb", "t",
     "http://hub.test/user/u1/doc/tree/a%20b.ipynb?token=t"),
    ("http://hub.test/user/u1/", "voila/render/x.ipynb?theme=dark", "t",
     "http://hub.test/user/u1/voila/render/x.ipynb?theme=dark&token=t"),
    ("http://hub.test/user/u1/", "lab?token=stale", "t", "http://hub.test/user/u1/lab?token=t"),
    # the token never leaves the server's prefix
    ("http://hub.test/user/u1/", "../u2/lab", "t", "http://hub.test/user/u1/?token=t"),
    ("http://hub.test/user/u1/", "https://evil.test/", "t", "http://hub.test/user/u1/?token=t"),
    ("http://hub.test/user/u1/", "//evil.test/x", "t", "http://hub.test/user/u1/evil.test/x?token=t"),
]


@pytest.mark.parametrize("params,expected", URLPATH_CASES)
def test_launch_urlpath(params: dict[str, str], expected: str):
    assert launch_urlpath(params) == expected


@pytest.mark.parametrize("url,urlpath,token,expected", REDIRECT_CASES)
def test_server_redirect(url: str, urlpath: str, token: str, expected: str):
    assert server_redirect(url, token, urlpath) == expected
