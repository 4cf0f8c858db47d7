"""The pages in a real browser against a stand-in stream (fakestack.py): form, launch page,
redirect, failure, reconnect, build tokens. The same against the real stack: test_browser_stack.py."""

from __future__ import annotations

import re

from pydantic import SecretStr

from .browser import needs_chromium, shot
from .fakestack import NOTICE, RESUME_URL, TOKEN, USER, serve

pytestmark = needs_chromium


def test_home_form_builds_links_and_launches(browser):
    with serve() as (base, record):
        page = browser.new_page()
        page.goto(base)
        page.select_option("#provider", "gh")
        page.fill("#repo", "https://github.com/org/repo")
        page.fill("#ref", "main")
        page.fill("#path", "notebooks/intro.ipynb")
        expected = f"{base}v2/gh/org/repo/main?labpath=notebooks%2Fintro.ipynb"
        assert page.input_value("#launch-url") == expected
        assert page.input_value("#badge-md") == f"[![Binder]({base}badge_logo.svg)]({expected})"
        assert ":target: " + expected in page.input_value("#badge-rst")
        page.check("input[name=pathtype][value=url]")
        assert page.input_value("#launch-url").endswith("?urlpath=notebooks%2Fintro.ipynb")
        page.check("input[name=pathtype][value=file]")
        shot(page, "fake-home-filled")
        page.click("#launch-button")
        page.wait_for_url(re.compile(rf"/user/{USER}/"), timeout=90_000)
        assert page.url == f"{base}user/{USER}/doc/tree/notebooks/intro.ipynb?token={TOKEN}"
        assert page.text_content("#jupyter") == "Fake Jupyter Server"
        assert record.launches["gh/org/repo/main"] == 1


def test_ready_with_a_notice_shows_it_and_waits_for_the_person(browser):
    with serve() as (base, _):
        page = browser.new_page()
        page.goto(f"{base}v2/gh/org/noticed/main")
        page.wait_for_selector("#notice:not([hidden])", timeout=90_000)
        items = page.locator("#notice-list li").all_text_contents()
        assert items == NOTICE  # every sentence, as text (no markup made of it)
        assert page.locator("#notice-list b").count() == 0
        assert page.is_visible("#ready-link") and not page.is_visible("#ready-auto")
        assert "/v2/" in page.url  # not taken away before reading it
        shot(page, "fake-launch-notice")
        page.click("#ready-link")
        page.wait_for_url(re.compile(rf"/user/{USER}/"), timeout=30_000)
        assert page.text_content("#jupyter") == "Fake Jupyter Server"


def test_ready_with_a_resume_link_shows_it_and_the_person_may_stay(browser):
    with serve() as (base, _):
        page = browser.new_page()
        page.goto(f"{base}v2/gh/org/kept/main")
        page.wait_for_selector("#resume:not([hidden])", timeout=90_000)
        assert page.input_value("#resume-url") == RESUME_URL
        assert page.get_attribute("#resume-download", "href") == RESUME_URL + "/home.tar.gz"
        assert page.is_visible("#resume-delete") and page.is_visible("#ready-link")
        shot(page, "fake-launch-resume")
        page.click("#resume-stay")  # the person keeps the page to copy the link
        assert not page.is_visible("#resume-stay") and "/v2/" in page.url
        page.click("#ready-link")
        page.wait_for_url(re.compile(rf"/user/{USER}/"), timeout=30_000)


def test_launch_page_shows_progress_then_failure(browser):
    with serve() as (base, _):
        page = browser.new_page()
        page.goto(f"{base}v2/gh/org/broken/main")
        page.wait_for_selector("#error:not([hidden])", timeout=90_000)
        assert "Build failed: RUN false returned 1" in page.text_content("#error")
        log = page.text_content("#log")
        assert "Step 6/6 : RUN echo 6" in log and "Fetching repository" in log
        assert page.get_attribute("#favicon", "href").endswith("favicon-failed.svg")
        assert page.text_content("#phase") == "Launch failed"
        assert page.is_visible("#retry")
        shot(page, "fake-launch-failed")


def test_queue_position_and_building_icon_while_waiting(browser):
    with serve() as (base, _):
        page = browser.new_page()
        # slow the stream down by watching the DOM as events arrive
        seen: list[str] = []
        page.expose_function("note", lambda text: seen.append(text))
        page.add_init_script("""
          new MutationObserver(() => {
            const q = document.getElementById('queue');
            if (q && !q.hidden) window.note(q.textContent + '|' + document.getElementById('favicon').href);
          }).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
        """)
        page.goto(f"{base}v2/gh/org/queued/main")
        page.wait_for_url(re.compile(rf"/user/{USER}/"), timeout=90_000)
        assert any("Position in the build queue: 2" in s for s in seen), seen
        assert any("favicon-building.svg" in s for s in seen), seen


def test_dropped_stream_resumes_without_a_second_launch(browser):
    with serve() as (base, record):
        page = browser.new_page()
        page.goto(f"{base}v2/gh/org/flaky/main?urlpath=lab")
        page.wait_for_url(re.compile(rf"/user/{USER}/lab"), timeout=90_000)
        assert page.url.endswith(f"/user/{USER}/lab?token={TOKEN}")
        streams = [s for s in record.streams if s[0] == "gh/org/flaky/main"]
        assert len(streams) == 2 and streams[0][1] is None and streams[1][1] == "s1.4"
        assert record.launches["gh/org/flaky/main"] == 1


def test_build_token_from_the_launch_page_is_accepted(browser):
    with serve(build_token_secret=SecretStr("k")) as (base, record):
        page = browser.new_page()
        page.goto(f"{base}v2/gh/org/repo/main")
        page.wait_for_url(re.compile(rf"/user/{USER}/"), timeout=90_000)
        assert record.launches["gh/org/repo/main"] == 1


def test_refusal_is_shown_in_the_page(browser):
    with serve(banned_specs=["^gh/org/banned"], banned_message="Disabled here.") as (base, _):
        page = browser.new_page()
        page.goto(f"{base}v2/gh/org/banned/main")
        page.wait_for_selector("#error:not([hidden])", timeout=90_000)
        assert "Disabled here." in page.text_content("#error")


def test_phone_width_and_keyboard(browser):
    with serve() as (base, _):
        page = browser.new_page(viewport={"width": 360, "height": 740})
        page.goto(base)
        # no horizontal scrolling at phone width
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        # the form is reachable by keyboard: skip link, then the provider select
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.focus("#repo")
        page.keyboard.type("org/repo")
        assert page.is_visible("#share")
        shot(page, "fake-home-phone")
