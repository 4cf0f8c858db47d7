"""The launch path end to end on real components (issue: launch a git repository end to end)."""

from __future__ import annotations

import pytest

from tests.streams import bindery_users, collect, git_spec, open_server, phases, pulled


async def test_uncached_ref_builds_then_launches_after_a_202(stack, git_repo_factory, hub):
    """The first seed's scenario: the run side must pull the image and the hub answers 202."""
    path, url = git_repo_factory("hello", "RUN echo hello-from-a-test > /tmp/hello.txt")
    events = await collect(stack, "git", git_spec(url, "main"))
    seen = phases(events)
    assert seen[-1] == "ready", events[-1]
    assert "building" in seen and "built" in seen
    ready = events[-1].data()
    image = ready["image"]
    # The start request answered 202 (spawn still pending), recorded by the launcher...
    assert ready["hub_status"] == 202
    assert any(e.data().get("hub_status") == 202 for e in events if e.phase == "launching")
    # ...and yet the server answers with the token through the proxy: never a 403.
    response = await open_server(events[-1])
    assert response.status_code == 200, response.text
    # The run side pulled the image from the registry (it was never built there).
    assert pulled(stack, image)
    for key in ("repo_url", "binder_ref_url", "binder_launch_host", "binder_request",
                "binder_persistent_request", "token", "url"):
        assert ready[key], key
    assert ready["repo_url"] == url

    # Same ref again: no build, straight to built, ready again.
    again = await collect(stack, "git", git_spec(url, "main"))
    assert "building" not in phases(again)
    assert phases(again)[-1] == "ready"
    assert [e for e in again if e.phase == "built"][0].message.startswith("Found built image")
    assert (await open_server(again[-1])).status_code == 200


async def test_gh_gl_and_gist_providers_use_the_configured_server(stack, git_repo_factory):
    """gh/gl/gist specs resolve against the configured base URL (here: the test git daemon)."""
    path, url = git_repo_factory("ghstyle")
    org, name = path.split("/")
    events = await collect(stack, "gh", f"{org}/{name}/main")
    assert phases(events)[-1] == "ready", events[-1]
    assert events[-1].data()["repo_url"] == url
    assert events[-1].data()["binder_request"] == f"v2/gh/{org}/{name}/main"
    # gl: the URL-escaped namespace names the same repository on the configured server.
    events = await collect(stack, "gl", f"{org}%2F{name}/main")
    assert phases(events)[-1] == "ready", events[-1]
    assert events[-1].data()["repo_url"] == url


async def test_failing_build_reports_its_error_and_leaves_nothing(stack, git_repo_factory, hub):
    path, url = git_repo_factory("broken", "RUN echo 'deliberate-failure-marker' && exit 3")
    events = await collect(stack, "git", git_spec(url, "main"))
    last = events[-1]
    assert last.phase == "failed"
    assert "Build failed" in last.message
    log = "".join(e.message for e in events)
    assert "deliberate-failure-marker" in log
    assert bindery_users(await hub.list_users(), url) == []


async def test_unknown_ref_and_unreachable_repo_fail_clearly(stack, git_repo_factory, git_server):
    path, url = git_repo_factory("refs")
    events = await collect(stack, "git", git_spec(url, "no-such-branch"))
    assert events[-1].phase == "failed"
    assert "Could not find ref 'no-such-branch'" in events[-1].message
    assert events[-1].data()["status_code"] == 404

    missing = f"{git_server.base_url}/org/does-not-exist"
    events = await collect(stack, "git", git_spec(missing, "main"))
    assert events[-1].phase == "failed"
    assert "Could not reach the repository" in events[-1].message


@pytest.mark.parametrize("provider,spec,expected", [
    ("git", "not-a-spec", "spec looks like"),
    ("gh", "only-org", "spec looks like"),
    ("git", git_spec("file:///etc", "main"), "must use one of"),
    ("git", git_spec("ext::sh -c touch% /tmp/bindery-canary-ext", "main"), "not allowed"),
    ("nosuch", "a/b/c", "Unknown provider"),
])
async def test_malformed_specs_fail_with_a_4xx(stack, provider, spec, expected):
    events = await collect(stack, provider, spec)
    assert events[-1].phase == "failed"
    assert expected in events[-1].message
    assert 400 <= events[-1].data()["status_code"] < 500


async def test_option_looking_ref_runs_nothing(stack, git_repo_factory, tmp_path):
    canary = tmp_path / "canary"
    path, url = git_repo_factory("options")
    for ref in (f"--upload-pack=touch {canary}", f"-u touch {canary}"):
        events = await collect(stack, "git", git_spec(url, ref.replace(" ", "%20")))
        assert events[-1].phase == "failed"
        assert "looks like a command-line option" in events[-1].message
        assert events[-1].data()["status_code"] == 400
    assert not canary.exists()
