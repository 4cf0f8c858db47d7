"""Where `bindery federate` sends a launch: weighted rendezvous on the repository (stable, all refs
of a repository together, a leaving member moves only its own repositories, weights respected),
the sticky cookie, the member that last launched the repository, the prime as the last resort; and
which failures take a member out at once. The members' health against real stacks is in
tests/test_federation.py."""

from __future__ import annotations

import httpx

from bindery.federation.member_health import FederationConfig, Member, Members
from bindery.federation.redirector import Router, failed_mid_way
from bindery.federation.rendezvous import rank, repository_key

KEYS = [f"gh/org{i % 37}/repo{i}" for i in range(3000)]


def test_rendezvous_is_stable_and_keeps_a_repository_together():
    members = {"a": 1.0, "b": 1.0, "c": 1.0}
    assert [rank(k, members) for k in KEYS[:50]] == [rank(k, dict(members)) for k in KEYS[:50]]
    assert repository_key("/build/gh/Org/Repo/main") == repository_key("/build/gh/org/repo/v1.0") \
        == "gh/org/repo"
    assert repository_key("/build/zenodo/10.5281/zenodo.3242074") == "zenodo/10.5281/zenodo.3242074"


def test_a_leaving_member_moves_only_its_repositories():
    before = {k: rank(k, {"a": 1, "b": 1, "c": 1})[0] for k in KEYS}
    after = {k: rank(k, {"a": 1, "b": 1})[0] for k in KEYS}
    moved = [k for k in KEYS if before[k] != after[k]]
    assert moved and all(before[k] == "c" for k in moved)
    # ...and they go to their second choice, not anywhere.
    assert all(after[k] == rank(k, {"a": 1, "b": 1, "c": 1})[1] for k in moved)


def test_weights_share_the_repositories():
    firsts = [rank(k, {"big": 3.0, "small": 1.0})[0] for k in KEYS]
    share = firsts.count("big") / len(firsts)
    assert 0.70 < share < 0.80, share  # 3:1 -> 75 %


def router(**healthy: bool) -> Router:
    members = {n: Member(n, f"http://{n}.example", prime=(n == "a"), healthy=h)
               for n, h in healthy.items()}
    config = FederationConfig(members)
    return Router(config, Members(config, httpx.AsyncClient()))


def test_cookie_then_cache_then_rendezvous_then_the_prime():
    r = router(a=True, b=True, c=True)
    key = "gh/org/repo"
    top = rank(key, {"a": 1, "b": 1, "c": 1})[0]
    assert r.choose(key, None) == (r.config.members[top], "rendezvous")
    other = next(n for n in "abc" if n != top)
    r.remember(key, other)  # it launched there last: its image is there
    assert r.choose(key, None) == (r.config.members[other], "cache")
    third = next(n for n in "abc" if n not in (top, other))
    assert r.choose(key, third) == (r.config.members[third], "cookie")
    # A cookie or memory naming a member out of rotation is ignored.
    r.config.members[third].healthy = r.config.members[other].healthy = False
    assert r.choose(key, third) == (r.config.members[top], "rendezvous")
    for m in r.config.members.values():
        m.healthy = False
    assert r.choose(key, None) == (r.config.members["a"], "last_resort")  # the prime


def test_which_failures_are_the_members():
    assert failed_mid_way({"phase": "failed", "status_code": 503}, launching=False)
    assert failed_mid_way({"phase": "failed", "message": "server exited"}, launching=True)
    for request_error in (400, 403, 404, 429):  # the request's, not the member's
        assert not failed_mid_way({"phase": "failed", "status_code": request_error}, True)
    assert not failed_mid_way({"phase": "failed", "message": "build failed"}, launching=False)
