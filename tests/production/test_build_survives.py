"""Builds outlive the bindery process that started them, and their logs outlive the builds (issue 9,
points 1 and 3): kill -9 of a web service mid-build; the build container keeps running; another
process asked for the same ref attaches to it (one build, counted by the registry) and launches;
no build container is left; the build log is readable at its URL after the build and after a
restart."""

from __future__ import annotations

import html
import os
import signal

import httpx

from bindery.builds.runner import engine_executor
from bindery.events import Event
from tests.production.own_stack import wait_for
from tests.production.watch import (dumps, manifest_pushes, open_with_token, remove_users,
                                    users_of, watch)
from tests.streams import git_spec


def log_url_of(events: list[Event]) -> str:
    urls = {e.data()["build_log_url"] for e in events if "build_log_url" in e.data()}
    assert len(urls) == 1, urls
    return urls.pop()


async def test_kill_9_mid_build_then_another_process_attaches(stack, git_repo_factory,
                                                              service_with):
    _, url = git_repo_factory("survivor", "RUN echo early-marker-$((6*7)) && sleep 12\n"
                              "RUN echo late-marker-$((6*9))")
    spec = git_spec(url, "main")
    executor = engine_executor(stack)
    first = service_with()
    try:
        seen = await watch(first.url, "git", spec,
                           stop_when=lambda s: "early-marker-42" in s.event.message)
        assert "early-marker-42" in seen.log(), dumps(seen)
        name = log_url_of([s.event for s in seen.events]).rsplit("/", 1)[1]
        os.killpg(first.proc.pid, signal.SIGKILL)  # the whole service, at once, mid-build
        first.proc.wait(30)
        # The build did not die with it: its container still runs on the build engine.
        assert name in {b.name for b in await executor.running()}

        second = service_with()
        done = await watch(second.url, "git", spec)
        assert done.last.phase == "ready", dumps(done)
        log = done.log()
        assert "already running on the build engine" in log, dumps(done)
        # Attached from the start: the line printed before the kill is in the second log too.
        assert "early-marker-42" in log and "late-marker-54" in log, dumps(done)
        image = done.last.data()["image"]
        assert manifest_pushes(stack, image) == 1  # one build, however many processes asked
        assert await open_with_token(done.last) == 200

        # No build container left behind, and the log is kept.
        async def no_container() -> bool:
            return name not in {b.name for b in await executor.running()}
        await wait_for(no_container, 60, "the finished build container removed")
        kept = httpx.get(f"{second.url}/build-logs/{name}.txt", timeout=10)
        assert kept.status_code == 200 and kept.headers["content-type"].startswith("text/plain")
        assert "early-marker-42" in kept.text and "late-marker-54" in kept.text

        # After a restart (a new process), the same URL still answers with the log.
        second.stop()
        third = service_with()
        again = httpx.get(f"{third.url}/build-logs/{name}", timeout=10)
        assert again.status_code == 200 and "late-marker-54" in again.text
        assert image in again.text  # the page says which image the build made
    finally:
        await remove_users(stack, url)
    assert await users_of(stack, url) == []


async def test_failed_build_links_its_escaped_log(stack, git_repo_factory):
    _, url = git_repo_factory("hostile-log", "RUN echo '<script>alert(42)</script>' && exit 3")
    done = await watch(stack.service.web_url.rstrip("/"), "git", git_spec(url, "main"))
    assert done.last.phase == "failed", dumps(done)
    failure = done.last.data()
    log_url = failure["build_log_url"]
    assert log_url in failure["message"]  # a person reading only the message finds the log too
    assert log_url == log_url_of([s.event for s in done.events])  # the launch page's link
    page = httpx.get(log_url, timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>alert(42)" not in page.text  # untrusted output is shown, never run
    assert html.escape("<script>alert(42)</script>", quote=False) in page.text
    assert "status 3" in page.text or "failed" in page.text
    text = httpx.get(log_url + ".txt", timeout=10)
    assert "<script>alert(42)</script>" in text.text
    assert text.headers["x-content-type-options"] == "nosniff"
    missing = httpx.get(log_url.rsplit("/", 1)[0] + "/bindery-build-" + "0" * 20, timeout=10)
    assert missing.status_code == 404
    assert httpx.get(log_url.rsplit("/", 1)[0] + "/..%2F..%2Fsecrets", timeout=10).status_code \
        == 404
