"""Old links to a deleted default branch keep working: a launch of `master` in a repository that
only has `main` (or the other way round) launches HEAD instead, and says so, as BinderHub does.
Against the real test git server and the session's stack."""

from __future__ import annotations

import pytest

from bindery.events import LaunchError
from bindery.launches.pipeline import head_fallback
from bindery.providers import get_provider
from bindery.settings import Settings
from tests.streams import collect


async def test_a_deleted_master_launches_head(stack, git_repo_factory, git_server):
    path, _ = git_repo_factory("renamed")  # its only branch is main
    head = git_server.git(git_server.root / path, "rev-parse", "HEAD")
    events = await collect(stack, "gh", f"{path}/master")
    notice = [e for e in events if e.data().get("ref_fallback") == "HEAD"]
    assert len(notice) == 1 and "'master'" in notice[0].message and "HEAD" in notice[0].message
    ready = events[-1].data()
    assert events[-1].phase == "ready", ready
    assert ready["binder_request"] == f"v2/gh/{path}/HEAD"
    assert ready["binder_persistent_request"] == f"v2/gh/{path}/{head}"


async def test_other_missing_refs_still_fail(stack, git_repo_factory):
    path, _ = git_repo_factory("nobranch")
    events = await collect(stack, "gh", f"{path}/no-such-branch")
    assert events[-1].phase == "failed" and events[-1].data()["status_code"] == 404
    assert not [e for e in events if e.data().get("ref_fallback")]


@pytest.mark.parametrize("spec,status,falls_back", [
    ("org/repo/master", 404, True), ("org/repo/main", 404, True),
    ("org/repo/develop", 404, False),  # only the default branches' old names
    ("org/repo/main", 503, False),  # the host is down: HEAD would not resolve either
])
def test_which_failures_fall_back(spec, status, falls_back):
    settings = Settings()
    provider = get_provider(settings, "gh", spec)
    fallback = head_fallback(settings, provider, LaunchError("no such ref", status))
    assert (fallback is not None) == falls_back
    if fallback is not None:
        assert fallback.spec == "org/repo/HEAD" and fallback.unresolved_ref == "HEAD"
