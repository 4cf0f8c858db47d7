"""Quotas (issue 3, point 5): servers per repository (with a higher tier for configured specs) and in
total, checked before building and before launching, with messages a person understands."""

from __future__ import annotations

import asyncio

from tests.production.watch import dumps, remove_users, users_of, watch
from tests.streams import git_spec


async def launch(service, url: str, ref: str = "main"):
    return await asyncio.wait_for(watch(service.url, "git", git_spec(url, ref)), 300)


async def test_per_repo_quota_with_a_tier_and_checked_before_building(service_with,
                                                                     git_repo_factory, git_server):
    plain_path, plain = git_repo_factory("quota-plain")
    _, tiered = git_repo_factory("quota-tiered")
    service = service_with(max_servers_per_repo=1, quota_tiers={r"/quota-tiered-": 2})
    try:
        first = await launch(service, plain)
        assert first.last.phase == "ready", dumps(first)
        refused = await launch(service, plain)
        assert refused.last.phase == "failed", dumps(refused)
        assert refused.last.data()["status_code"] == 429
        assert refused.last.message == (
            "This repository already has 1 server running, its limit is 1. Please try again in "
            "a few minutes, when some of them have stopped.")
        assert len(await users_of(service.settings, plain)) == 1  # the refusal left nothing

        # The tiered repository may run 2.
        for _ in range(2):
            ok = await launch(service, tiered)
            assert ok.last.phase == "ready", dumps(ok)
        over = await launch(service, tiered)
        assert over.last.phase == "failed" and "its limit is 2" in over.last.message, dumps(over)

        # Checked before building: a new commit of a repository at its limit is not even built.
        git_server.commit(git_server.root / plain_path, {"Dockerfile.extra": "x\n"}, "new commit")
        unbuilt = await launch(service, plain)
        assert unbuilt.last.phase == "failed" and unbuilt.last.data()["status_code"] == 429
        assert not {"waiting", "building", "built", "launching"} & set(unbuilt.phases()), \
            dumps(unbuilt)
    finally:
        await remove_users(service.settings, plain)
        await remove_users(service.settings, tiered)


async def test_total_quota_refuses_clearly(stack, service_with, git_repo_factory):
    _, url = git_repo_factory("quota-total")
    active = [u for u in await users_of(stack) if u.get("servers")]  # what runs now
    service = service_with(max_servers=len(active) + 1)
    try:
        ok = await launch(service, url)
        assert ok.last.phase == "ready", dumps(ok)
        full = await launch(service, url)
        assert full.last.phase == "failed", dumps(full)
        assert full.last.data()["status_code"] == 429
        assert full.last.message.startswith("This Binder is running as many servers as it can (")
        assert "Please try again in a few minutes." in full.last.message
    finally:
        await remove_users(service.settings, url)
