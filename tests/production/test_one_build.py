"""One build per image: 20 concurrent requests for one unbuilt ref share one build (issue 3, point 2)."""

from __future__ import annotations

import asyncio

from tests.production.watch import (Watch, dumps, manifest_pushes, open_with_token, remove_users,
                                    server_containers, users_of, watch)
from tests.streams import git_spec

EARLY, LATE = 5, 15


async def test_twenty_requests_for_one_unbuilt_ref_share_one_build(stack, git_repo_factory):
    # A build that says something early, then takes a few seconds, so late joiners join mid-build.
    _, url = git_repo_factory("popular", "RUN echo early-marker-$((6*7)) && sleep 4\n"
                              "RUN echo late-marker-$((6*9))")
    spec = git_spec(url, "main")
    base = stack.service.web_url
    try:
        early = [Watch() for _ in range(EARLY)]
        tasks = [asyncio.create_task(watch(base, "git", spec, into=w)) for w in early]
        # Late joiners arrive once the shared build has visibly started (bounded: 120 s).
        async with asyncio.timeout(120):
            while not any("early-marker-42" in w.log() for w in early):
                done = [t for t in tasks if t.done()]
                assert not done, [dumps(t.result()) for t in done]
                await asyncio.sleep(0.1)
        late = [Watch() for _ in range(LATE)]
        tasks += [asyncio.create_task(watch(base, "git", spec, into=w)) for w in late]
        async with asyncio.timeout(600):
            await asyncio.gather(*tasks)

        watches = early + late
        for w in watches:
            assert w.last.phase == "ready", dumps(w)
            # Every watcher, late joiners included, got the build log from its start.
            assert "early-marker-42" in w.log() and "late-marker-54" in w.log(), dumps(w)
        # Late joiners were told they joined a build under way.
        assert all("Joining the build" in w.log() for w in late)
        image = {w.last.data()["image"] for w in watches}
        assert len(image) == 1
        # Exactly one build, counted by the registry: one manifest push for this image.
        assert manifest_pushes(stack, image.pop()) == 1
        # Each watcher was launched separately: 20 users, 20 URLs, each answering with its token.
        users = {w.last.data()["user"] for w in watches}
        urls = {w.last.data()["url"] for w in watches}
        assert len(users) == len(urls) == EARLY + LATE
        statuses = await asyncio.gather(*(open_with_token(w.last) for w in watches))
        assert statuses == [200] * (EARLY + LATE)
        assert len(await users_of(stack, url)) == EARLY + LATE
    finally:
        await remove_users(stack, url)
    assert await users_of(stack, url) == []
    assert not [n for n in server_containers(stack) if any(u in n for u in users)]
