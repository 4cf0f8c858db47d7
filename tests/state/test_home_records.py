"""Homes and resume links in the state store (bindery/launches/homes.py), against SQLite and a real
redis-server: only the secret's hash is stored, links work from any process, guessed and expired
links are refused with a 4xx, retention is judged by a clock the test moves."""

from __future__ import annotations

import hashlib
import json

import pytest

from bindery.events import LaunchError
from bindery.launches.homes import (HOME, RESUME_LINK, VOLUME_PREFIX, Homes, launch_home,
                                    ref_base, resume_key)

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_resume_link_works_from_another_process_and_only_its_hash_is_stored(store_factory):
    clock = Clock()
    a, b = Homes(store_factory(), 30 * DAY, clock=clock), Homes(store_factory(), 30 * DAY, clock=clock)
    url = "https://git.example.org/a/b"
    secret, home = await a.issue_resume("git", "enc/" + "c" * 40, "enc/", url)
    assert home.volume.startswith(VOLUME_PREFIX) and secret not in home.volume
    grant = await b.redeem(resume_key(secret))  # another replica, after a restart: the store
    assert (grant.home, grant.provider, grant.spec) == (home, "git", "enc/" + "c" * 40)
    newer = await b.redeem(resume_key(secret), "feature/x")  # the same home, a newer ref
    assert newer.home == home and newer.spec == "enc/feature%2Fx"
    # nothing in the store holds the secret itself
    for kind in (RESUME_LINK, HOME):
        for key in await a.store.keys(kind):
            record = await a.store.get(kind, key)
            assert secret not in key and secret not in json.dumps(record)
    assert hashlib.sha256(secret.encode()).hexdigest() in await a.store.keys(RESUME_LINK)


async def test_guessed_expired_and_deleted_links_are_refused_with_4xx(store_factory):
    clock = Clock()
    homes = Homes(store_factory(), 2 * DAY, clock=clock)
    secret, home = await homes.issue_resume("gh", "org/repo/" + "a" * 40, "org/repo/", "u")
    with pytest.raises(LaunchError) as guessed:
        await homes.redeem(resume_key(secret[:-1] + ("A" if secret[-1] != "A" else "B")))
    assert guessed.value.status_code == 404
    with pytest.raises(LaunchError) as bad_ref:
        await homes.redeem(resume_key(secret), "../../etc")
    assert bad_ref.value.status_code == 400
    clock.now += 1.5 * DAY
    await homes.redeem(resume_key(secret))  # used: its retention starts again
    clock.now += 1.5 * DAY
    await homes.redeem(resume_key(secret))
    assert not homes.expired(home.volume, await homes.last_used())
    clock.now += 2 * DAY + 1
    with pytest.raises(LaunchError) as expired:
        await homes.redeem(resume_key(secret))
    assert expired.value.status_code == 410 and "expired" in expired.value.message
    assert homes.expired(home.volume, await homes.last_used())
    # deleting: the link stops working and its home is expired at once
    secret2, home2 = await homes.issue_resume("gh", "org/repo/" + "a" * 40, "org/repo/", "u")
    await homes.delete_resume(resume_key(secret2))
    with pytest.raises(LaunchError) as deleted:
        await homes.redeem(resume_key(secret2))
    assert deleted.value.status_code == 404
    assert homes.expired(home2.volume, await homes.last_used())


async def test_person_homes_per_repository_or_per_person(store_factory):
    store = store_factory()
    per_repo, per_person = Homes(store, DAY), Homes(store, DAY, per_person=True)
    a1 = await per_repo.person_home("ada", "https://x/a")
    assert a1 == await per_repo.person_home("ada", "https://x/a")  # stable
    assert a1 != await per_repo.person_home("ada", "https://x/b")  # per repository
    assert a1 != await per_repo.person_home("bob", "https://x/a")  # per person
    assert await per_person.person_home("ada", "https://x/a") == \
        await per_person.person_home("ada", "https://x/b")
    assert a1.start_options() == {"bindery_home": a1.volume}
    assert a1.volume in await per_repo.last_used()
    # the image a home was last merged for: the next start of that image skips the merge
    assert await per_repo.start_options(a1, "img@sha256:1") == {"bindery_home": a1.volume}
    await per_repo.merged(a1, "img@sha256:1")
    await per_repo.person_home("ada", "https://x/a")  # a use keeps what was merged
    assert await per_repo.start_options(a1, "img@sha256:1") == {
        "bindery_home": a1.volume, "bindery_home_merged": "img@sha256:1"}
    assert await per_repo.start_options(a1, "img@sha256:2") == {"bindery_home": a1.volume}


async def test_launch_home_picks_the_persons_the_links_or_a_new_one(store_factory):
    homes = Homes(store_factory(), DAY)
    mine = await launch_home(homes, "http://b/", "gh", "o/r/main", "main", "o/r/" + "c" * 40,
                             "repo", person="ada")
    assert mine.home is not None and mine.ready_fields is None  # signed in: no link
    new = await launch_home(homes, "http://b/", "gh", "o/r/main", "main", "o/r/" + "c" * 40, "repo")
    assert new.ready_fields["resume_url"].startswith("http://b/v2/resume/")
    secret = new.ready_fields["resume_url"].rsplit("/", 1)[1]
    assert new.ready_fields["home_download_url"] == f"http://b/resume/{secret}/home.tar.gz"
    grant = await homes.redeem(resume_key(secret), "main")
    assert grant.spec == "o/r/main" and grant.home == new.home
    assert (await launch_home(homes, "http://b/", "gh", "o/r/main", "main", "x", "repo",
                              grant=grant)).home == new.home  # the link's home, no new link
    assert new.issued_key == resume_key(secret)
    await homes.forget_unused(new.issued_key)  # its launch failed: nobody has the link
    with pytest.raises(LaunchError):
        await homes.redeem(new.issued_key)
    assert homes.expired(new.home.volume, await homes.last_used())
    await homes.forget_unused(new.issued_key)  # twice: no error
    off = await launch_home(homes, "http://b/", "gh", "o/r/main", "main", "x", "repo",
                            resume_links=False)
    assert off.home is None
    assert ref_base("zenodo", "10.5281/zenodo.1", "") == ""  # no ref to choose for a record
