"""In a real browser against the running stack: home form -> launch page -> Jupyter server;
a failing repository shows its error. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest

from .browser import needs_chromium, shot

pytestmark = needs_chromium
LAUNCH_MS = 600_000


def test_home_form_to_running_jupyter_server(stack, git_repo_factory, browser):
    path, _ = git_repo_factory("browser", "RUN echo launched-from-the-browser > /tmp/b.txt",
                               files={"hello.txt": "hello from the browser test\n"})
    page = browser.new_page()
    page.goto(stack.service.web_url)
    page.select_option("#provider", "gh")
    page.fill("#repo", path)
    page.fill("#ref", "main")
    page.fill("#path", "tree")
    page.check("input[name=pathtype][value=url]")
    assert page.input_value("#launch-url") == f"{stack.service.web_url}v2/gh/{path}/main?urlpath=tree"
    shot(page, "stack-home-filled")
    page.click("#launch-button")
    page.wait_for_url(f"{stack.service.web_url}v2/**", timeout=30_000)
    page.wait_for_selector("#log:not(:empty)", timeout=LAUNCH_MS)
    shot(page, "stack-launch-progress")
    page.wait_for_url(f"{stack.hub_public}/user/**", timeout=LAUNCH_MS)
    # The Jupyter server's own page (notebook/lab front ends embed their config as JSON).
    page.wait_for_selector("#jupyter-config-data", state="attached", timeout=60_000)
    assert "/tree" in page.url
    # ...and its front end rendered its file browser.
    page.wait_for_selector(".jp-DirListing", timeout=120_000)
    page.wait_for_load_state("networkidle")
    shot(page, "stack-jupyter-server")


def test_failing_repository_shows_its_error(stack, git_repo_factory, browser):
    path, _ = git_repo_factory("browserbroken", "RUN echo 'browser-failure-marker' && exit 3")
    page = browser.new_page()
    page.goto(f"{stack.service.web_url}v2/gh/{path}/main")
    page.wait_for_selector("#error:not([hidden])", timeout=LAUNCH_MS)
    assert page.text_content("#error").strip()
    assert "browser-failure-marker" in page.text_content("#log")
    assert page.get_attribute("#favicon", "href").endswith("favicon-failed.svg")
    # The whole build log stays readable after the build: the log area links it.
    assert page.is_visible("#full-log")
    log_page = browser.new_page()
    log_page.goto(page.get_attribute("#full-log", "href"))
    assert "browser-failure-marker" in log_page.text_content("#log")
    shot(page, "stack-launch-failed")


@pytest.mark.parametrize("query,suffix", [("?labpath=hello.txt", "/doc/tree/hello.txt")])
def test_legacy_labpath_lands_on_the_file(stack, git_repo_factory, browser, query, suffix):
    path, _ = git_repo_factory("labpath", files={"hello.txt": "hi\n"})
    page = browser.new_page()
    page.goto(f"{stack.service.web_url}v2/gh/{path}/main{query}")
    page.wait_for_url(f"{stack.hub_public}/user/**", timeout=LAUNCH_MS)
    assert suffix in page.url
