"""A federation's members and their health, judged as mybinder.org's federation redirector judges
BinderHub members: every check of ``/health`` ok, ``/versions`` equal to the prime's, and the "Pod
quota" check at least ``headroom`` below its quota. A failing member leaves the rotation and is asked
again after ``failed_period``; a member whose launch failed mid-way leaves at once (``take_out``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("bindery.federation")


class ConfigError(Exception):
    """The federation's configuration is unusable (its message says why)."""


@dataclass
class Member:
    name: str
    url: str
    weight: float = 1.0
    prime: bool = False
    healthy: bool = False
    reason: str = "not checked yet"
    next_check: float = 0.0


@dataclass
class FederationConfig:
    members: dict[str, Member]
    period: float = 10.0  # seconds between checks of a healthy member
    failed_period: float = 300.0  # ... of a member out of rotation
    timeout: float = 2.0  # one /health or /versions request
    retries: int = 3  # attempts of a check on connection errors
    headroom: int = 10  # pods below the quota a member must stay
    cookie_hours: float = 4.0
    remember: int = 10_000  # repositories whose last member is remembered (cache-aware routing)
    proxy_timeout: float = 900.0  # one proxied launch stream at most

    @property
    def prime(self) -> Member:
        return next(m for m in self.members.values() if m.prime)

    @classmethod
    def load(cls, path: Path) -> FederationConfig:
        """mybinder.org's redirector config shape: {"hosts": {name: {"url", "weight", "prime"}},
        "check": {"period", "failed_period", "timeout", "retries"}, "pod_headroom",
        "host_cookie_age_hours"}."""
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        hosts = raw.get("hosts") if isinstance(raw, dict) else None
        if not isinstance(hosts, dict) or not hosts:
            raise ConfigError(f"{path}: needs \"hosts\": {{name: {{\"url\": ..., \"weight\": ..., "
                              "\"prime\": true}}}}")
        members = {}
        for name, host in hosts.items():
            if not isinstance(host, dict) or not str(host.get("url", "")).startswith(("http://",
                                                                                      "https://")):
                raise ConfigError(f"{path}: host {name!r} needs an http(s) \"url\"")
            weight = float(host.get("weight", 1))
            if weight <= 0:
                continue  # as mybinder.org's: a zero weight removes a member
            members[name] = Member(name, host["url"].rstrip("/"), weight, bool(host.get("prime")))
        if sum(m.prime for m in members.values()) != 1:
            raise ConfigError(f"{path}: exactly one host must be \"prime\": true")
        check = raw.get("check") or {}
        return cls(members, period=float(check.get("period", 10)),
                   failed_period=float(check.get("failed_period", 300)),
                   timeout=float(check.get("timeout", 2)), retries=int(check.get("retries", 3)),
                   headroom=int(raw.get("pod_headroom", 10)),
                   cookie_hours=float(raw.get("host_cookie_age_hours", 4)))


class Unhealthy(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Members:
    """Keeps every member's health current (one background task)."""

    def __init__(self, config: FederationConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client
        self.prime_versions: Any = None
        self._task: asyncio.Task | None = None

    def healthy(self) -> dict[str, Member]:
        return {n: m for n, m in self.config.members.items() if m.healthy}

    def take_out(self, name: str, reason: str) -> None:
        member = self.config.members[name]
        if member.healthy:
            log.warning("%s taken out of rotation at once: %s", name, reason)
        member.healthy, member.reason = False, reason
        member.next_check = time.monotonic() + self.config.failed_period

    async def check(self, member: Member) -> None:
        try:
            await self._judge(member)
        except Unhealthy as exc:
            if member.healthy:
                log.warning("%s leaves the rotation: %s", member.name, exc.reason)
            member.healthy, member.reason = False, exc.reason
            period = self.config.failed_period
        else:
            if not member.healthy:
                log.info("%s joins the rotation", member.name)
            member.healthy, member.reason = True, ""
            period = self.config.period
        jitter = 1 + 0.1 * (random.random() - 0.5)
        member.next_check = time.monotonic() + period * jitter

    async def _judge(self, member: Member) -> None:
        versions = await self._get(member, "/versions")
        if member.prime:
            self.prime_versions = versions
        elif self.prime_versions is not None and versions != self.prime_versions:
            raise Unhealthy(f"versions {versions} differ from the prime's {self.prime_versions}")
        health = await self._get(member, "/health", ok=(200, 503))
        for check in health.get("checks", []) if isinstance(health, dict) else []:
            if not check.get("ok"):
                raise Unhealthy(f"check {check.get('service')!r} failed")
            if check.get("service") == "Pod quota" and check.get("quota") is not None \
                    and check.get("total_pods") is not None \
                    and check["total_pods"] + self.config.headroom >= check["quota"]:
                raise Unhealthy(f"near its pod quota ({check['total_pods']} of {check['quota']})")
        if not isinstance(health, dict) or not health.get("ok"):
            raise Unhealthy("/health is not ok")

    async def _get(self, member: Member, path: str, ok: tuple[int, ...] = (200,)) -> Any:
        last = ""
        for attempt in range(max(1, self.config.retries)):
            try:
                response = await self.client.get(member.url + path, timeout=self.config.timeout)
                if response.status_code in ok:
                    return response.json()
                last = f"{path} answered {response.status_code}"
            except (httpx.HTTPError, ValueError) as exc:
                last = f"{path}: {type(exc).__name__}"
            if attempt + 1 < self.config.retries:
                await asyncio.sleep(min(1.0, self.config.period / 4))
        raise Unhealthy(last)

    async def check_all(self) -> None:
        """One round over every member (the prime first: the others are compared with it)."""
        ordered = sorted(self.config.members.values(), key=lambda m: not m.prime)
        await self.check(ordered[0])
        await asyncio.gather(*(self.check(m) for m in ordered[1:]))

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            due = [m for m in self.config.members.values() if m.next_check <= now]
            due.sort(key=lambda m: not m.prime)
            for member in due:
                try:
                    await self.check(member)
                except Exception:  # a bug in one check must not stop the others
                    log.exception("health check of %s failed", member.name)
            soonest = min(m.next_check for m in self.config.members.values())
            await asyncio.sleep(max(0.05, min(1.0, soonest - time.monotonic())))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
