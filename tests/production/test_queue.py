"""The build queue on the real stack (issue 3, point 3): slots, positions that fall, per-repo cap."""

from __future__ import annotations

import asyncio

from tests.production.watch import Watch, dumps, open_with_token, remove_users, watch
from tests.streams import git_spec

SLOW_BUILD = "RUN echo queued-build-step && sleep 3"


def build_span(w: Watch) -> tuple[float, float]:
    """(first build output, built) receive times of one watcher's build."""
    start = w.first(lambda s: "queued-build-step" in s.event.message or
                    (s.phase == "building" and "Step" in s.event.message))
    built = w.first(lambda s: s.phase == "built")
    assert start and built, dumps(w)
    return start.at, built.at


async def test_one_slot_three_repositories_positions_fall_and_all_finish(service_with,
                                                                         git_repo_factory):
    service = service_with(build_slots=1, build_slots_per_repo=1)
    urls = [git_repo_factory(f"queued{i}", SLOW_BUILD)[1] for i in range(3)]
    try:
        async with asyncio.timeout(300):
            watches = await asyncio.gather(*(watch(service.url, "git", git_spec(u, "main"))
                                             for u in urls))
        for w in watches:
            assert w.last.phase == "ready", dumps(w)
            assert await open_with_token(w.last) == 200
        positions = [[s.event.data()["position"] for s in w.events if s.phase == "waiting"
                      and "position" in s.event.data()] for w in watches]
        # One build ran at once; the others waited and were told their place as it changed.
        assert sorted(len(p) > 0 for p in positions) == [False, True, True], positions
        assert any(p[:2] == [2, 1] for p in positions), positions  # the last one moved up
        for p in positions:
            assert p == sorted(p, reverse=True), positions  # a position never rises
        waited = [w for w, p in zip(watches, positions) if p]
        assert all("all build slots are busy" in w.log() for w in waited)
        # With one slot the builds never overlapped.
        spans = sorted(build_span(w) for w in watches)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert start >= end, spans
    finally:
        for u in urls:
            await remove_users(service.settings, u)


async def test_per_repo_cap_keeps_two_commits_of_one_repo_apart(service_with, git_repo_factory,
                                                              git_server):
    service = service_with(build_slots=2, build_slots_per_repo=1)
    path, url = git_repo_factory("capped", SLOW_BUILD)
    repo = git_server.root / path
    git_server.git(repo, "checkout", "-q", "-b", "second")
    git_server.commit(repo, {"second.txt": "another commit\n"}, "second commit")
    try:
        async with asyncio.timeout(300):
            first, second = await asyncio.gather(
                watch(service.url, "git", git_spec(url, "main")),
                watch(service.url, "git", git_spec(url, "second")))
        for w in (first, second):
            assert w.last.phase == "ready", dumps(w)
        assert first.last.data()["image"] != second.last.data()["image"]
        # A slot was free, yet one of them waited because its repository held its only slot...
        waited = [w for w in (first, second)
                  if "this repository already uses its build slots" in w.log()]
        assert len(waited) == 1, (dumps(first), dumps(second))
        # ...and the two builds did not run at once.
        (_, end), (start, _) = sorted([build_span(first), build_span(second)])
        assert start >= end
    finally:
        await remove_users(service.settings, url)
