"""Live code in a book: Thebe (npm `thebe`, the version jupyter-book uses) on a page served from
another origin, in headless Chromium, launches a server through bindery and prints a cell's result
from a real kernel. Needs the cors_allow_origin setting on both sides: bindery's event stream, and the
launched server's REST API and kernel websocket (Jupyter's allow_origin).

The session's stack allows exactly the book's origin (its hub passes allow_origin to every server it
starts); a page from any other origin stays blocked.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from tests.asgi_thread import serve_in_thread

from .browser import needs_chromium, shot

pytestmark = needs_chromium

ROOT = Path(__file__).resolve().parents[2]
THEBE = ROOT / "node_modules" / "thebe" / "lib"
BOOK = Path(__file__).with_name("thebe_book") / "book.html"
LAUNCH_MS = 600_000


@pytest.fixture(scope="module")
def book_origin(stack) -> str:
    """The one origin the session's stack lets pages use it from (tests/conftest.py)."""
    return stack.service.cors_allow_origin


def serve_book(folder: Path, origin: str, binder_url: str, repo_path: str):
    page = BOOK.read_text().replace("@REPO@", repo_path).replace(
        "@BINDER_URL@", binder_url.rstrip("/"))
    (folder / "book.html").write_text(page)
    app = Starlette(routes=[Mount("/thebe", StaticFiles(directory=THEBE)),
                            Mount("/", StaticFiles(directory=folder))])
    return serve_in_thread(app, "book", port=urlsplit(origin).port)


def test_thebe_on_another_origin_runs_a_cell_through_bindery(
        stack, git_repo_factory, book_origin, browser, tmp_path):
    path, _ = git_repo_factory("thebe")
    with serve_book(tmp_path, book_origin, stack.service.web_url, path):
        page = browser.new_page()
        messages: list[str] = []
        page.on("console", lambda m: messages.append(m.text))
        page.goto(f"{book_origin}/book.html")
        # Thebe opened bindery's event stream from the book's origin, got `ready`, and started a
        # kernel session on the launched server (REST from the book's origin).
        try:
            page.wait_for_function("() => window.thebe && window.thebe.session", timeout=LAUNCH_MS)
        except Exception:
            shot(page, "thebe-no-session")
            raise AssertionError("Thebe got no kernel session; browser console:\n"
                                 + "\n".join(messages[-30:]))
        page.click(".thebe-run-button")
        # The cell's output comes back over the kernel's websocket, opened from the book's origin.
        page.wait_for_function(
            "() => [...document.querySelectorAll('.thebe-output')]"
            ".some(e => e.textContent.trim() === '42')", timeout=120_000)
        shot(page, "thebe-cell-ran")
        server = page.evaluate("() => window.thebe.server.userServerUrl")

    # The launched server answers the book's origin and no other (not a blanket '*').
    base, _, token = server.partition("?token=")
    allowed = httpx.get(f"{base}api/kernels", params={"token": token},
                        headers={"Origin": book_origin}, timeout=10)
    assert allowed.status_code == 200
    assert allowed.headers.get("access-control-allow-origin") == book_origin
    # (Jupyter answers a token-authenticated request whatever its origin, always naming the one
    # allowed origin: a browser keeps the answer from a page of any other.)
    other = httpx.get(f"{base}api/kernels", params={"token": token},
                      headers={"Origin": "http://127.0.0.1:9"}, timeout=10)
    assert other.headers.get("access-control-allow-origin") in (None, book_origin)


def test_bindery_answers_the_allowed_origin_only(stack, book_origin):
    web = stack.service.web_url.rstrip("/")
    for path in ("/health", "/versions", "/build/gh/org/x/main"):
        with httpx.stream("GET", web + path, headers={"Origin": book_origin}, timeout=30) as r:
            assert r.headers.get("access-control-allow-origin") == book_origin, path
    preflight = httpx.options(web + "/build/gh/org/x/main", timeout=10, headers={
        "Origin": book_origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "cache-control, last-event-id"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == book_origin
    assert "last-event-id" in preflight.headers["access-control-allow-headers"].lower()
    stranger = httpx.get(web + "/health", headers={"Origin": "http://127.0.0.1:9"}, timeout=30)
    assert "access-control-allow-origin" not in stranger.headers
