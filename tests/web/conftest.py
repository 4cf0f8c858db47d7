"""Helpers for the web tests: a minimal app made of the UI routes, and the JS test runner."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bindery.settings import Settings
from bindery.state.sqlite_store import SQLiteStore
from bindery.launches import launch_records as launches
from bindery.web import ui


def launch_book(keep_seconds: float = 3600.0) -> launches.LaunchBook:
    """A launch book over the embedded (SQLite) state store, in a folder of its own."""
    return launches.LaunchBook(SQLiteStore(Path(tempfile.mkdtemp()) / "state.sqlite"),
                               keep_seconds)


def ui_app(book: launches.LaunchBook | None = None, **settings: object) -> Starlette:
    return Starlette(routes=ui.routes(Settings(**settings), book or launch_book()))


@pytest.fixture
def client() -> TestClient:
    return TestClient(ui_app())


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium (see browser.py). Module scope, not session: Playwright's sync API
    keeps an event loop running in this thread while open, which async tests elsewhere cannot share."""
    from .browser import chromium

    with chromium() as b:
        yield b
