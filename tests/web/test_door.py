"""The door: bans, allow list, blocked networks, build tokens, rate limit (with their messages)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from starlette.requests import Request

from bindery.settings import Settings
from bindery.web import tokens
from bindery.web.door import Door
from bindery.web.ratelimit import TokenBucket


def request(client: str = "198.51.100.7", query: str = "", headers: dict[str, str] | None = None,
            host: str = "bindery.test") -> Request:
    raw = [(b"host", host.encode())] + [
        (k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "GET", "path": "/build/gh/o/r/main", "root_path": "",
                    "query_string": query.encode(), "headers": raw, "client": (client, 5000),
                    "scheme": "http", "server": (host, 80)})


async def test_everything_passes_by_default():
    door = Door(Settings())
    assert await door.admit(request(), "gh", "org/repo/main") is None
    assert await door.headers(request()) == {}


async def test_banned_spec_is_refused_with_clear_message():
    door = Door(Settings(banned_specs=[r"^gh/evil-org/"], banned_message="Disabled here."))
    refusal = await door.admit(request(), "gh", "evil-org/miner/main")
    assert refusal is not None and refusal.status_code == 403
    assert "Disabled here." in refusal.message and "gh/evil-org/miner/main" in refusal.message
    assert refusal.event() == {"phase": "failed", "status_code": 403, "message": refusal.message}
    assert await door.admit(request(), "gh", "good-org/evil-org/main") is None


async def test_banned_patterns_see_url_decoded_specs():
    door = Door(Settings(banned_specs=[r"^git/https://bad\.example/"]))
    refusal = await door.admit(request(), "git", "https%3A%2F%2Fbad.example%2Fr.git/HEAD")
    assert refusal is not None and refusal.status_code == 403


async def test_allow_list_admits_only_matches():
    door = Door(Settings(allowed_specs=[r"^gh/my-org/", r"^gl/"]))
    assert await door.admit(request(), "gh", "my-org/repo/main") is None
    assert await door.admit(request(), "gl", "group%2Fproject/main") is None
    refusal = await door.admit(request(), "gh", "other/repo/main")
    assert refusal is not None and refusal.status_code == 403
    assert "allow list" in refusal.message and "gh/other/repo/main" in refusal.message


@pytest.mark.parametrize("client,blocked", [
    ("203.0.113.9", True), ("203.0.114.1", False), ("2001:db8::1", True), ("::1", False)])
async def test_blocked_networks(client: str, blocked: bool):
    door = Door(Settings(blocked_networks=["203.0.113.0/24", "2001:db8::/32"]))
    refusal = await door.admit(request(client), "gh", "o/r/main")
    assert (refusal is not None) is blocked
    if refusal:
        assert refusal.status_code == 403 and "network" in refusal.message


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy():
    xff = {"X-Forwarded-For": "203.0.113.9, 10.0.0.5"}
    assert Door(Settings()).client_address(request("10.0.0.2", headers=xff)) == "10.0.0.2"
    door = Door(Settings(trusted_proxies=["10.0.0.0/8"]))
    # right to left: 10.0.0.5 is a trusted proxy too, 203.0.113.9 is the client
    assert door.client_address(request("10.0.0.2", headers=xff)) == "203.0.113.9"
    # a client cannot pose as someone else by talking to us directly
    assert door.client_address(request("198.51.100.1", headers=xff)) == "198.51.100.1"


async def test_blocked_network_behind_trusted_proxy():
    door = Door(Settings(blocked_networks=["203.0.113.0/24"], trusted_proxies=["10.0.0.0/8"]))
    refusal = await door.admit(
        request("10.0.0.2", headers={"X-Forwarded-For": "203.0.113.9"}), "gh", "o/r/main")
    assert refusal is not None and refusal.status_code == 403


async def test_rate_limit_headers_message_and_per_client():
    door = Door(Settings(rate_limit_per_minute=3))
    for left in (2, 1, 0):
        assert await door.admit(request(), "gh", "o/r/main") is None
        headers = await door.headers(request())
        assert headers["RateLimit-Limit"] == "3" and headers["RateLimit-Remaining"] == str(left)
        assert int(headers["RateLimit-Reset"]) > 0 and "Retry-After" not in headers
    refusal = await door.admit(request(), "gh", "o/r/main")
    assert refusal is not None and refusal.status_code == 429
    assert "Too many launches" in refusal.message and "3 per minute" in refusal.message
    assert refusal.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(refusal.headers["Retry-After"]) <= 20
    response = refusal.response()
    assert response.status_code == 429 and response.headers["Retry-After"]
    # another address has its own budget
    assert await door.admit(request("198.51.100.8"), "gh", "o/r/main") is None


async def test_refused_requests_do_not_spend_the_budget():
    door = Door(Settings(rate_limit_per_minute=1, banned_specs=["bad"]))
    for _ in range(3):
        assert (await door.admit(request(), "gh", "o/bad/main")).status_code == 403
    assert await door.admit(request(), "gh", "o/good/main") is None


def test_token_bucket_refills_evenly_and_bounds_memory():
    now = [0.0]
    bucket = TokenBucket(limit=2, period=60, max_keys=3, clock=lambda: now[0])
    assert bucket.take("a").allowed and bucket.take("a").allowed
    denied = bucket.take("a")
    assert not denied.allowed and denied.retry_after == 30 and denied.reset == 60
    now[0] = 30.0
    assert bucket.take("a").allowed
    for key in "bcdef":
        bucket.take(key)
    assert len(bucket) <= 3
    now[0] = 1000.0
    bucket.take("z")
    assert len(bucket) == 1  # refilled buckets carry nothing and are dropped


# -- build tokens ------------------------------------------------------------------------------
SECRET = "s3cret"


def token_door(**kw: object) -> Door:
    return Door(Settings(build_token_secret=SecretStr(SECRET), **kw))


async def test_build_token_from_the_launch_page_admits():
    door = token_door()
    page = request()  # the launch page request; its origin is http://bindery.test
    token = door.issue_token(page, "gh", "org/repo/main")
    stream = request(query=f"build_token={token}",
                     headers={"Referer": "http://bindery.test/v2/gh/org/repo/main"})
    assert await door.admit(stream, "gh", "org/repo/main") is None
    stream = request(query=f"build_token={token}", headers={"Origin": "http://bindery.test"})
    assert await door.admit(stream, "gh", "org/repo/main") is None


async def test_missing_token_is_refused():
    refusal = await token_door().admit(request(), "gh", "org/repo/main")
    assert refusal is not None and refusal.status_code == 403 and "build token" in refusal.message


@pytest.mark.parametrize("case,expected", [
    ("other-spec", "different repository"),
    ("other-origin", "different site"),
    ("expired", "expired"),
    ("forged", "not valid"),
    ("garbage", "not valid"),
])
async def test_bad_tokens_are_refused_with_reasons(case: str, expected: str):
    door = token_door()
    secret = SECRET.encode()
    origin = "http://bindery.test"
    token = {
        "other-spec": tokens.issue(secret, "gh", "org/other/main", origin, 60),
        "other-origin": tokens.issue(secret, "gh", "org/repo/main", "https://elsewhere.test", 60),
        "expired": tokens.issue(secret, "gh", "org/repo/main", origin, 60, now=0),
        "forged": tokens.issue(b"not-the-secret", "gh", "org/repo/main", origin, 60),
        "garbage": "abc",
    }[case]
    stream = request(query=f"build_token={token}", headers={"Origin": origin})
    refusal = await door.admit(stream, "gh", "org/repo/main")
    assert refusal is not None and refusal.status_code == 403
    assert expected in refusal.message


def test_token_binds_encoded_and_decoded_spellings_alike():
    secret = b"k"
    token = tokens.issue(secret, "git", "https%3A%2F%2Fx.org%2Fr.git/HEAD", "http://b", 60)
    tokens.verify(secret, token, "git", "https://x.org/r.git/HEAD", "http://b")


def test_token_expiry_follows_settings():
    door = token_door(build_token_expiry_seconds=1)
    token = door.issue_token(request(), "gh", "o/r/main")
    assert token
    with pytest.raises(tokens.BadToken, match="expired"):
        tokens.verify(SECRET.encode(), token, "gh", "o/r/main", "http://bindery.test",
                      now=__import__("time").time() + 5)


def test_public_url_decides_the_token_origin():
    door = token_door(public_url="https://binder.example.org/")
    assert door.page_origin(request()) == "https://binder.example.org"


@pytest.mark.parametrize("address,key", [
    ("198.51.100.7", "198.51.100.7"), ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"), ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ("::ffff:198.51.100.7", "198.51.100.7"), ("fe80::1%eth0", "fe80::/64"), ("not-an-ip", "not-an-ip")])
def test_client_keys(address: str, key: str):
    from bindery.web.client_keys import client_key

    assert client_key(address) == key


async def test_ipv6_clients_share_their_64s_rate_limit():
    door = Door(Settings(rate_limit_per_minute=2))  # no store: the bucket is in memory
    first, second, third = (request(f"2001:db8:1:2::{i}") for i in (1, 2, 3))
    assert await door.admit(first, "gh", "o/r/main") is None
    assert await door.admit(second, "gh", "o/r/main") is None
    refused = await door.admit(third, "gh", "o/r/main")
    assert refused is not None and refused.status_code == 429
    assert await door.admit(request("2001:db8:1:3::1"), "gh", "o/r/main") is None


@pytest.mark.parametrize("token", ["é.x", "abc.déf", "\u00ff" * 40, "a.\u2713"])
def test_non_ascii_build_tokens_are_malformed_not_errors(token: str):
    with pytest.raises(tokens.BadToken, match="malformed"):
        tokens.verify(b"secret", token, "gh", "o/r/main", "http://bindery.test")
