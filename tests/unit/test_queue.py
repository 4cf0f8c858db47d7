"""Build queue rules (dedup, slots, per-repository cap, positions), driven by a controllable runner.

The real builds are counted from the registry in the stack tests; here the rules themselves.
"""

from __future__ import annotations

import asyncio

from bindery.backoff import wait_until_async
from bindery.builds.queue import BuildJob, BuildQueue
from bindery.events import Event, LaunchError


class Gate:
    """A runner whose builds finish when the test says so."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.fail: set[str] = set()

    async def __call__(self, job: BuildJob):
        self.started.append(job.image)
        gate = self.release.setdefault(job.image, asyncio.Event())
        yield Event(phase="building", message=f"step 1 of {job.image}\n")
        await gate.wait()
        if job.image in self.fail:
            raise LaunchError("Build failed: boom")
        yield Event(phase="building", message="done\n")


def job(image: str, repo: str = "r1", client: str = "") -> BuildJob:
    return BuildJob(image=image, repo=repo, commit="c", source=repo, client=client)


async def drain(build):
    return [e async for e in build.follow()]


async def test_same_image_shares_one_build_and_late_joiners_get_the_log():
    gate = Gate()
    queue = BuildQueue(gate, slots=2, per_repo=2)
    first = queue.submit(job("img"))
    watcher = asyncio.create_task(drain(first))
    await asyncio.sleep(0)
    late = queue.submit(job("img"))
    assert late is first
    late_watcher = asyncio.create_task(drain(late))
    gate.release["img"].set()
    a, b = await watcher, await late_watcher
    assert [e.message for e in a] == [e.message for e in b]
    assert "step 1 of img\n" in [e.message for e in b]
    assert gate.started == ["img"]


async def test_slots_positions_and_per_repo_cap():
    gate = Gate()
    queue = BuildQueue(gate, slots=2, per_repo=1)
    a1 = queue.submit(job("a1", "A"))
    a2 = queue.submit(job("a2", "A"))  # same repo: waits although a slot is free
    b1 = queue.submit(job("b1", "B"))
    c1 = queue.submit(job("c1", "C"))
    await asyncio.sleep(0)
    assert gate.started == ["a1", "b1"]
    assert (a2.position, c1.position) == (1, 2)
    gate.release.setdefault("b1", asyncio.Event()).set()
    await drain(b1)
    # B's slot goes to C (A is at its cap), and a2 stays first in line.
    assert [b.job.image for b in queue.running] == ["a1", "c1"]
    assert a2.position == 1
    gate.release["a1"].set()
    await drain(a1)
    assert [b.job.image for b in queue.running] == ["c1", "a2"]
    positions = [e.data().get("position") for e in a2.channel.events if e.phase == "waiting"]
    assert positions == [1]
    c_positions = [e.data().get("position") for e in c1.channel.events if e.phase == "waiting"]
    assert c_positions == [2]
    for name in ("a2", "c1"):
        gate.release.setdefault(name, asyncio.Event()).set()
    await asyncio.gather(drain(a2), drain(c1))
    await queue.aclose()


async def test_a_failed_build_fails_every_watcher_and_frees_its_slot():
    gate = Gate()
    gate.fail.add("x")
    queue = BuildQueue(gate, slots=1, per_repo=1)
    x = queue.submit(job("x"))
    y = queue.submit(job("y", "other"))
    gate.release.setdefault("x", asyncio.Event()).set()
    for _ in range(2):
        try:
            await drain(x)
        except LaunchError as exc:
            assert "boom" in exc.message
        else:
            raise AssertionError("the build should fail")
    assert "x" not in queue.active
    assert queue.running == [y]
    gate.release.setdefault("y", asyncio.Event()).set()
    await drain(y)
    assert gate.started == ["x", "y"]



async def until(condition, what: str) -> None:
    await wait_until_async(condition, timeout=5, what=what, interval=0.01)  # the schedulers poll every 0.05 s


async def test_builds_running_elsewhere_take_slots_and_are_joined_without_one():
    """`occupied` (the engine's build containers) counts builds of other processes: they hold
    slots until the engine stops listing them, and an image already building elsewhere starts
    at once (its runner attaches) without a slot."""
    gate = Gate()
    elsewhere = [("other-img", "B")]

    async def occupied():
        return list(elsewhere)

    queue = BuildQueue(gate, slots=1, per_repo=1, occupied=occupied, poll=0.05)
    mine = queue.submit(job("mine", "A"))
    waited = asyncio.create_task(drain(mine))
    await until(lambda: mine.position == 1, "mine waits for the slot the other process holds")
    joined = queue.submit(job("other-img", "B"))
    await until(lambda: "other-img" in gate.started, "the running build joined at once")
    assert gate.started == ["other-img"] and mine.position == 1
    elsewhere.clear()  # the other process's build container ended
    gate.release["other-img"].set()
    await drain(joined)
    await until(lambda: "mine" in gate.started, "mine starts once the engine's slot is free")
    gate.release["mine"].set()
    events = await waited
    assert any("Waiting for a build slot (all build slots are busy)" in e.message for e in events)
    await queue.aclose()


async def test_a_slot_freed_elsewhere_is_seen_by_polling():
    gate = Gate()
    elsewhere = [("x", "B"), ("y", "C")]

    async def occupied():
        return list(elsewhere)

    queue = BuildQueue(gate, slots=2, per_repo=1, occupied=occupied, poll=0.05)
    mine = queue.submit(job("mine", "A"))
    await until(lambda: mine.position == 1, "mine waits: both slots are held elsewhere")
    assert gate.started == []
    elsewhere.pop()  # one of the other process's builds ended; nothing here was told
    await until(lambda: gate.started == ["mine"], "mine starts on the next poll")
    gate.release["mine"].set()
    await drain(mine)
    await queue.aclose()


async def test_two_processes_share_one_waiting_line(tmp_path):
    """Two queues (two bindery processes) with one state store and one engine: a build waiting in
    one process keeps its place ahead of a later one in the other, and positions agree."""
    from bindery.builds.waiting_line import SharedWaitingLine
    from bindery.state.sqlite_store import SQLiteStore

    store = SQLiteStore(tmp_path / "state.sqlite")
    gates = {"A": Gate(), "B": Gate()}
    queues: dict[str, BuildQueue] = {}

    async def engine():  # the build engine's running builds: both processes' running builds
        return [(b.job.image, b.job.repo) for q in queues.values() for b in q.running]

    for name in ("A", "B"):
        queues[name] = BuildQueue(gates[name], slots=1, per_repo=1, occupied=engine, poll=0.05)
        queues[name].line = SharedWaitingLine(store, owner=name)
    first = queues["A"].submit(job("a1", "r1"))
    await until(lambda: "a1" in gates["A"].started, "A's first build runs")
    second = queues["B"].submit(job("b1", "r2"))
    await until(lambda: second.position == 1, "B's build is first in line")
    third = queues["A"].submit(job("a2", "r3"))
    await until(lambda: third.position == 2, "A's later build is second, behind B's")
    gates["A"].release["a1"].set()
    await drain(first)
    await until(lambda: "b1" in gates["B"].started, "the free slot goes to B, first in line")
    assert "a2" not in gates["A"].started
    await until(lambda: third.position == 1, "A's build moves up")
    gates["B"].release["b1"].set()
    await drain(second)
    await until(lambda: "a2" in gates["A"].started, "then A's")
    gates["A"].release["a2"].set()
    await drain(third)
    positions = [e.data().get("position") for e in third.channel.events if e.phase == "waiting"]
    assert positions == [2, 1]
    for queue in queues.values():
        await queue.aclose()
    await store.aclose()


async def test_clients_take_turns_and_one_client_holds_at_most_its_share():
    """One client floods the queue with unbuilt repositories; another client's build, asked for
    later, gets the next free slot (round-robin), and the flooder never holds more than
    per_client slots although others are free."""
    gate = Gate()
    queue = BuildQueue(gate, slots=3, per_repo=1, per_client=2)
    flood = [queue.submit(job(f"f{i}", f"F{i}", client="flooder")) for i in range(5)]
    await asyncio.sleep(0)
    assert gate.started == ["f0", "f1"]  # a third slot is free, but not for this client
    assert [b.position for b in flood[2:]] == [1, 2, 3]
    assert "use their share of the slots" in flood[2].channel.events[-1].message
    other = queue.submit(job("o1", "O", client="other"))
    await asyncio.sleep(0)
    assert gate.started == ["f0", "f1", "o1"]  # the free slot is the other client's at once
    late = queue.submit(job("o2", "O2", client="other"))
    third = queue.submit(job("t1", "T", client="third"))
    await asyncio.sleep(0)
    # every slot is busy: the client with nothing running is first, then the one with one build
    # running, then the flooder's (two running), though they all asked earlier
    assert (third.position, late.position, flood[2].position) == (1, 2, 3)
    gate.release.setdefault("o1", asyncio.Event()).set()
    await drain(other)
    # equal turns (nothing running for either): the client never served goes first
    await until(lambda: gate.started[-1] == "t1", "t1 starts")
    assert late.position == 1
    gate.release.setdefault("f0", asyncio.Event()).set()
    await drain(flood[0])
    await until(lambda: gate.started[-1] != "t1", "the next build starts")
    assert gate.started[-1] == "o2"  # not f2, the flooder's, which asked long before
    for name in ("f1", "t1", "o2", "f2", "f3", "f4"):
        gate.release.setdefault(name, asyncio.Event()).set()
    await asyncio.gather(*(drain(b) for b in [*flood[1:], third, late]))
    assert sorted(gate.started[-3:]) == ["f2", "f3", "f4"]
    await queue.aclose()


async def test_turns_and_caps_between_clients_hold_across_processes(tmp_path):
    """The shared line carries each build's client and whose running builds are whose: a
    flooder's builds in one process do not keep another client's build in a second process
    waiting behind them, and the per-client cap counts the other process's builds."""
    from bindery.builds.waiting_line import SharedWaitingLine
    from bindery.state.sqlite_store import SQLiteStore

    store = SQLiteStore(tmp_path / "state.sqlite")
    gates = {"A": Gate(), "B": Gate()}
    queues: dict[str, BuildQueue] = {}

    async def engine():
        return [(b.job.image, b.job.repo) for q in queues.values() for b in q.running]

    for name in ("A", "B"):
        queues[name] = BuildQueue(gates[name], slots=2, per_repo=1, per_client=1,
                                  occupied=engine, poll=0.05)
        queues[name].line = SharedWaitingLine(store, owner=name)
    a = [queues["A"].submit(job(f"a{i}", f"RA{i}", client="flooder")) for i in range(3)]
    await until(lambda: gates["A"].started == ["a0"], "one of the flooder's builds runs")
    b = [queues["B"].submit(job(f"b{i}", f"RB{i}", client="flooder")) for i in range(2)]
    await until(lambda: b[1].position is not None, "the flooder's builds in B wait")
    assert gates["B"].started == []  # a slot is free, but the flooder holds its share in A
    other = queues["B"].submit(job("o", "RO", client="other"))
    await until(lambda: "o" in gates["B"].started, "the other client's build takes the free slot")
    gates["A"].release["a0"].set()
    await drain(a[0])
    await until(lambda: len(gates["A"].started) + len(gates["B"].started) == 3,
                "the flooder's next build starts, in whichever process")
    for gate in gates.values():
        for image in ("a1", "a2", "b0", "b1", "o"):
            gate.release.setdefault(image, asyncio.Event()).set()
    await asyncio.gather(*(drain(x) for x in [*a[1:], *b, other]))
    for queue in queues.values():
        await queue.aclose()
    await store.aclose()


async def test_a_process_with_nothing_waiting_keeps_saying_whose_builds_run(tmp_path):
    """Process A runs the flooder's build and has nothing waiting; its line entries are kept
    fresh all the same (they would go stale otherwise), so process B, long after the staleness
    bound, still counts that build against the flooder's cap."""
    from bindery.builds.waiting_line import KIND, KEY, SharedWaitingLine
    from bindery.state.sqlite_store import SQLiteStore

    store = SQLiteStore(tmp_path / "state.sqlite")
    gates = {"A": Gate(), "B": Gate()}
    queues: dict[str, BuildQueue] = {}

    async def engine():
        return [(b.job.image, b.job.repo) for q in queues.values() for b in q.running]

    for name in ("A", "B"):
        queues[name] = BuildQueue(gates[name], slots=2, per_repo=1, per_client=1,
                                  occupied=engine, poll=0.05)
        queues[name].line = SharedWaitingLine(store, owner=name, stale_after=0.3)
    running = queues["A"].submit(job("a0", "RA", client="flooder"))
    await until(lambda: gates["A"].started == ["a0"], "A's build runs")
    first = None
    for _ in range(500):  # bounded: until A has refreshed its entry past the staleness bound
        entries = (await store.get(KIND, KEY) or {}).get("running", [])
        if entries and first is None:
            first = entries[0]["seen"]
        if entries and entries[0]["seen"] > first + 0.5:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("A's running entry was not refreshed")
    second = queues["B"].submit(job("b0", "RB", client="flooder"))
    await until(lambda: second.position == 1, "B's build of the same client waits")
    assert gates["B"].started == [] and "share of the slots" in second.channel.events[-1].message
    gates["A"].release["a0"].set()
    await drain(running)
    await until(lambda: gates["B"].started == ["b0"], "then it starts")
    gates["B"].release["b0"].set()
    await drain(second)
    for queue in queues.values():
        await queue.aclose()
    await store.aclose()
