"""What a build's output costs in memory and in the state store is bounded (channel tail, session
budget); the engine's log is read as a stream with only its tail kept."""

from __future__ import annotations

from bindery.channel import Channel
from bindery.events import Event
from bindery.launches.sessions import Budget


async def test_a_late_joiner_gets_the_tail_a_bounded_channel_keeps():
    channel = Channel(max_bytes=100)
    for n in range(50):
        await channel.publish(Event(phase="building", message=f"line {n:03d}\n"))  # 9 bytes each
    await channel.close()
    seen = [(i, e.message) async for i, e in channel.follow()]
    assert len(channel.events) == 11 and sum(len(e.message) for e in channel.events) <= 100
    assert seen[0] == (39, "line 039\n") and seen[-1] == (49, "line 049\n")  # indices stay true


async def test_a_watcher_behind_the_kept_tail_skips_to_it():
    channel = Channel(max_bytes=20)
    follower = channel.follow()
    await channel.publish(Event(phase="building", message="a" * 10))
    assert (await anext(follower))[0] == 0
    for _ in range(10):
        await channel.publish(Event(phase="building", message="b" * 10))
    index, event = await anext(follower)
    assert index >= 9 and event.message == "b" * 10  # what was let go is not replayed
    await follower.aclose()


def test_a_session_keeps_phases_and_the_end_past_its_budget():
    budget = Budget(max_bytes=50)
    kept = [budget.admit(Event(phase="building", message="x" * 20)) for _ in range(10)]
    stored = [e for e in kept if e is not None]
    assert len(stored) == 3  # 40 bytes, then the notice instead of the rest
    assert "more than 50 bytes of output" in stored[-1].message
    assert budget.admit(Event(phase="pushing", message="y" * 30)) is not None  # a new phase
    assert budget.admit(Event(phase="pushing", message="z" * 30, digest="sha256:1")) is not None
    assert budget.admit(Event(phase="pushing", message="z" * 30)) is None
    assert budget.admit(Event(phase="failed", message="the end")) is not None  # terminal
    assert Budget(0).admit(Event(phase="building", message="x" * 10**6)) is not None  # no bound


def test_failure_messages_name_the_registry_and_the_budgets():
    from bindery.builds.repo2docker_run import known_cause

    tried = {"docker://buildpack-deps:jammy": "docker.io", "docker://quay.io/a/b:1": "quay.io",
             "docker://127.0.0.1:5000/bindery/base@sha256:ab": "127.0.0.1:5000"}
    for source, registry in tried.items():
        said = known_cause([f"Error: initializing source {source}: pinging container registry"])
        assert f"could not be pulled from its registry, {registry}" in said, said
    said = known_cause(["yes > fill: File size limit exceeded"], disk="4 GiB")
    assert "disk budget (4 GiB)" in said
    said = known_cause(['building at STEP "RUN pip install x": exit status 137'], memory="3G")
    assert "memory" in said and "(3G)" in said
