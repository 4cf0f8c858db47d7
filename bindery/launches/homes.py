"""Homes: a person's files that outlive their server, and resume links that bring them back.

A home is a named volume of the servers' engine (a podman volume on the embedded stack, a PVC on
Kubernetes). bindery only names it and records its use; the hub's spawner makes it (with its size
limit), merges the repository's files into it (bindery/home_merge.py) and mounts it at the server's
home folder, when a launch's start options carry its name under :data:`HOME_OPTION`.

Two kinds of home:

- a signed-in person's: :meth:`Homes.person_home` (per person and repository, or per person with
  the home_per_person setting); the same name for every launch of theirs.
- an anonymous launch's: :meth:`Homes.issue_resume` gives it a new home and a resume link, a secret
  capability URL ``/v2/resume/<secret>`` (event stream ``/build/resume/<secret>``). The state store
  keeps only the secret's sha256 (:func:`resume_key`); :meth:`Homes.redeem` turns a key back into
  what to launch with which home, within the retention period after the last use.

Both kinds' last use is recorded per volume (kind HOME), which is what the home cleaner
(bindery/storage/home_cleaner.py) removes expired volumes by.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from bindery.events import LaunchError
from bindery.state.base import Record, StateStore

HOME_OPTION = "bindery_home"  # the start option that carries the home's volume name to the spawner
# The image whose files the home already holds merged (set only when it is the image launched): the
# spawner then skips the merge, which could change nothing (same files, same manifest).
MERGED_OPTION = "bindery_home_merged"
VOLUME_PREFIX = "bindery-home-"  # every home volume's name starts with it (the spawner checks)
RESUME = "resume"  # the provider part of resume links: /v2/resume/<secret>
HOME, RESUME_LINK = "home", "resume-link"  # state-store kinds: volume -> last use; key -> link
# Records outlive the retention by this much, so an expired link is told apart from a guessed one
# and the cleaner still sees when a volume was last used.
AFTERLIFE = 7 * 86400.0
SECRET_BYTES = 32  # 256 bits: unguessable
SECRET = re.compile(r"[A-Za-z0-9_-]{40,64}")
KEY = re.compile(r"[0-9a-f]{64}")
REF = re.compile(r"[A-Za-z0-9._/-]{1,200}")
GIT_REF_PROVIDERS = ("gh", "gl", "git", "gist")  # specs that end with /<ref>


@dataclass(frozen=True)
class Home:
    volume: str

    def start_options(self) -> dict[str, str]:
        """What a launch's start request adds so that the spawner mounts this home."""
        return {HOME_OPTION: self.volume}


@dataclass(frozen=True)
class ResumeGrant:
    """What a resume link launches: the repository's request and the home to mount."""

    home: Home
    provider: str
    spec: str


def resume_key(secret: str) -> str:
    """What the store keeps of a resume link's secret (and what logs and sessions carry)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def valid_secret(secret: str) -> bool:
    return SECRET.fullmatch(secret) is not None


def resume_spec(key: str, ref: str | None) -> str:
    """The launch spec of a resume link's stream: its key, and the ref it asks for, if any."""
    return key + (f"/{quote(ref, safe='')}" if ref else "")


def ref_base(provider: str, spec: str, ref: str) -> str:
    """The spec without its ref (for a resume link that asks for a newer ref), or '' when the
    repository kind has no ref in its spec (DOI records, images, folders)."""
    if provider in GIT_REF_PROVIDERS and ref and spec.endswith("/" + ref):
        return spec[:-len(ref)]
    return ""


class Homes:
    """Home records in the state store (shared by every process; nothing kept in memory)."""

    def __init__(self, store: StateStore, retention_seconds: float, per_person: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.retention = retention_seconds
        self.per_person = per_person
        self.clock = clock

    # -- signed-in people ------------------------------------------------------------------------
    async def person_home(self, user: str, repo_key: str | None) -> Home:
        """The home of `user` for repository `repo_key` (or for all their repositories, with
        home_per_person or when `repo_key` is None). Records its use now."""
        scope = user if self.per_person or repo_key is None else f"{user}\n{repo_key}"
        home = Home(VOLUME_PREFIX + "p" + hashlib.sha256(scope.encode()).hexdigest()[:31])
        await self.used(home, "person")
        return home

    # -- anonymous launches: resume links ---------------------------------------------------------
    async def issue_resume(self, provider: str, persistent_spec: str, spec_without_ref: str,
                           repo: str) -> tuple[str, Home]:
        """A new home and the secret of the resume link that brings it back. `persistent_spec`
        is what the link launches (the commit launched now); `spec_without_ref` + a ref is what
        it launches when it asks for a ref ('' : it cannot)."""
        secret = secrets.token_urlsafe(SECRET_BYTES)
        home = Home(VOLUME_PREFIX + "r" + secrets.token_hex(15))
        key = resume_key(secret)
        now = self.clock()
        await self.store.put(RESUME_LINK, key, {
            "key": key, "volume": home.volume, "provider": provider, "spec": persistent_spec,
            "ref_base": spec_without_ref, "repo": repo, "created": now, "at": now},
            self.retention + AFTERLIFE)
        await self.used(home, "resume")
        return secret, home

    async def redeem(self, key: str, ref: str | None = None) -> ResumeGrant:
        """What the resume link of `key` launches, its use recorded; LaunchError (4xx) for a key
        nobody issued, a deleted or expired link, or a ref it cannot take."""
        record = await self._link(key)
        spec = record["spec"]
        if ref:
            if not record.get("ref_base") or REF.fullmatch(ref) is None or ".." in ref:
                raise LaunchError("This resume link cannot launch that ref: a ref is letters, "
                                  "digits and . _ / -, for git repositories only.", 400)
            spec = record["ref_base"] + quote(ref, safe="")
        now = self.clock()
        await self.store.put(RESUME_LINK, key, {**record, "at": now}, self.retention + AFTERLIFE)
        home = Home(record["volume"])
        await self.used(home, "resume")
        return ResumeGrant(home, record["provider"], spec)

    async def resume_home(self, key: str) -> Home:
        """The home of a valid resume link (for its download); LaunchError as :meth:`redeem`."""
        return Home((await self._link(key))["volume"])

    async def delete_resume(self, key: str) -> Home:
        """Forget the link and mark its home for removal by the cleaner's next pass."""
        record = await self._link(key)
        await self.store.delete(RESUME_LINK, key)
        home = Home(record["volume"])
        await self.store.put(HOME, home.volume, {"at": 0.0, "kind": "resume", "deleted": True},
                             AFTERLIFE)
        return home

    async def forget_unused(self, key: str) -> None:
        """A new link whose launch failed (nobody got it): forget it, and let its home go."""
        try:
            await self.delete_resume(key)
        except LaunchError:
            pass

    async def _link(self, key: str) -> Record:
        record = await self.store.get(RESUME_LINK, key) if KEY.fullmatch(key) else None
        # The store found it by key; compare in constant time anyway (a store's lookup is not
        # promised to be exact, e.g. case-folding).
        if record is None or not hmac.compare_digest(str(record.get("key", "")), key):
            raise LaunchError("This resume link is not known here: it was never issued by this "
                              "service, or its home was deleted.", 404)
        if self.clock() - float(record.get("at", 0)) > self.retention:
            raise LaunchError(f"This resume link has expired: homes are kept "
                              f"{self.retention / 86400:g} days after their last use.", 410)
        return record

    # -- use, for the cleaner ---------------------------------------------------------------------
    async def used(self, home: Home, kind: str) -> None:
        now = self.clock()

        def change(record: Record | None) -> tuple[Record, None]:
            return {**(record or {}), "at": now, "kind": kind, "deleted": False}, None
        await self.store.update(HOME, home.volume, change, self.retention + AFTERLIFE)

    async def start_options(self, home: Home, image: str) -> dict[str, str]:
        """The start options that mount `home` for a server of `image` (see MERGED_OPTION)."""
        record = await self.store.get(HOME, home.volume)
        merged = {MERGED_OPTION: image} if record and record.get("image") == image else {}
        return {**home.start_options(), **merged}

    async def merged(self, home: Home, image: str) -> None:
        """A server of `image` started on `home`: its files are merged into it."""
        def change(record: Record | None) -> tuple[Record | None, None]:
            return (None if record is None else {**record, "image": image}), None
        await self.store.update(HOME, home.volume, change, self.retention + AFTERLIFE)

    async def last_used(self) -> dict[str, float]:
        """Volume -> when it was last used, for every home the store remembers."""
        out = {}
        for volume in await self.store.keys(HOME):
            record = await self.store.get(HOME, volume)
            if record is not None:
                out[volume] = float(record.get("at", 0))
        return out

    def expired(self, volume: str, used: dict[str, float], now: float | None = None) -> bool:
        """Whether `volume` is past its retention (a volume nothing records is)."""
        now = self.clock() if now is None else now
        return now - used.get(volume, 0.0) > self.retention


@dataclass(frozen=True)
class LaunchHome:
    """The home a launch mounts, and what its `ready` event says about it."""

    home: Home | None = None
    ready_fields: dict[str, str] | None = None
    issued_key: str | None = None  # a new resume link's key: forgotten if the launch fails


def resume_urls(web_url: str, secret: str) -> dict[str, str]:
    """The resume link, and where its home is downloaded and deleted (the link authenticates)."""
    base = web_url.rstrip("/") + "/"
    return {"resume_url": f"{base}v2/{RESUME}/{secret}",
            "home_download_url": f"{base}{RESUME}/{secret}/home.tar.gz",
            "home_delete_url": f"{base}{RESUME}/{secret}/delete"}


async def launch_home(homes: Homes | None, web_url: str, provider: str, spec: str, ref: str,
                      persistent_spec: str, repo_key: str, person: str | None = None,
                      grant: ResumeGrant | None = None, resume_links: bool = True) -> LaunchHome:
    """The home of one launch: a signed-in person's own, the one a resume link brought back, or
    (anonymous, when resume links are on) a new one with its link; else none."""
    if homes is None:
        return LaunchHome()
    if person is not None:
        return LaunchHome(await homes.person_home(person, repo_key))
    if grant is not None:
        return LaunchHome(grant.home)
    if not resume_links:
        return LaunchHome()
    secret, home = await homes.issue_resume(provider, persistent_spec,
                                            ref_base(provider, spec, ref), repo_key)
    return LaunchHome(home, resume_urls(web_url, secret), resume_key(secret))
