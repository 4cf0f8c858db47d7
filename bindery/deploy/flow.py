"""`bindery deploy <instance>` as stages: artifact → install → start → healthy → switch → verify → stop old.

Why this shape:
* The new version starts on the *other* backend slot next to the live one; nothing touches the live one until the
  new one is healthy and reports the right version. Any failure before the switch leaves the old one serving.
* The old version keeps running after the switch until end-to-end verification through the public URL is green.
  Rollback is then just switching back (instant, no reinstall, no cold start), verified again. Only a green deploy
  stops the old version. (Stopping it before verification, as a naive blue/green does, would make every red deploy
  an outage until the old version restarted.)
* Each stage is a CheckResult in one Report: attempts, classification and evidence for the person on call.

The machine-specific parts (venvs, processes, the front proxy) sit behind ``Runtime`` so this flow is tested with a
fake runtime and a fake HTTP transport.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import httpx

from bindery.deploy import probes, verdicts as records
from bindery.deploy.classify import CheckFailed
from bindery.deploy.instances import InstanceConfig
from bindery.deploy.report import Attempt, CheckResult, Report
from bindery.backoff import Backoff
from bindery.deploy.retry import run_check
from bindery.deploy.verify import Target, verify
from bindery.artifacts.store import Artifact, ArtifactStore
from bindery.artifacts.wait import ArtifactWaitTimeout, wait_for_artifact


@dataclass(frozen=True)
class Slot:
    """One running version of an instance on one backend port."""

    version: str
    port: int
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Runtime(Protocol):
    """What the flow needs from the machine (see runtime.LocalRuntime)."""

    def live(self) -> Slot | None: ...
    def ensure_stack(self) -> dict | None: ...
    def install(self, artifact: Artifact) -> dict | None: ...
    def start(self, version: str, port: int) -> Slot: ...
    def running(self, slot: Slot) -> bool: ...
    def switch(self, slot: Slot) -> None: ...
    def stop(self, slot: Slot) -> None: ...
    # several replicas (``replica_ports``): HAProxy in front of them, replaced one at a time
    def slot_on(self, port: int) -> Slot | None: ...
    def balance(self, ports: list[int]) -> dict | None: ...
    def in_rotation(self, slot: Slot) -> dict | None: ...
    def set_live(self, slot: Slot) -> None: ...


@dataclass
class Deployer:
    config: InstanceConfig
    store: ArtifactStore
    runtime: Runtime
    client: httpx.Client
    deploy_dir: Path | None = None  # where verdicts are recorded; None: not recorded
    artifact_timeout: float = 600.0
    backoff: Backoff = Backoff()
    health_poll: float = 0.5  # first pause between /health polls of a starting version (grows to 5 s)
    say: Callable[[str], None] = lambda message: None

    def deploy(self, version: str | None = None) -> Report:
        version = version or self.config.version
        old = self.runtime.live()
        report = Report(self.config.name, "deploy", version, old.version if old else None)
        if old is not None and old.version == version and self.runtime.running(old):
            report.notes.append(f"{version} is already live on port {old.port}; verifying it")
            report.action = "verify"
            if self._stage(report, "stack", self.runtime.ensure_stack) is None:
                return self._finish(report.finish(False))
            return self._finish(self._verify(report, version))
        artifact = self._stage(report, "artifact", lambda: self._wait_artifact(version))
        if artifact is None:
            return self._finish(report.finish(False))
        if self._stage(report, "install", lambda: self.runtime.install(artifact) or {}) is None:
            return self._finish(report.finish(False))
        # Both slots share the instance's stack (engines, registry, hub): bring up what is not running.
        if self._stage(report, "stack", lambda: self.runtime.ensure_stack() or {}) is None:
            return self._finish(report.finish(False))
        if self.config.replica_ports:
            return self._finish(self._roll(report, version))
        port = self._free_port(old)
        new = self._stage(report, "start", lambda: self.runtime.start(version, port))
        if new is None:
            return self._finish(report.finish(False))
        if not self._healthy(report, new):
            self.runtime.stop(new)
            report.notes.append("the new version never became healthy; it was stopped, the old one kept serving")
            return self._finish(report.finish(False))
        self._stage(report, "switch", lambda: self.runtime.switch(new) or {"port": new.port})
        self._verify(report, version)
        if report.green:
            if old is not None:
                self._stage(report, "stop old", lambda: self.runtime.stop(old) or {"version": old.version})
            return self._finish(report)
        report.rollback = self._rollback(old, new)
        return self._finish(report)

    # -- stages --------------------------------------------------------------------------------
    def _wait_artifact(self, version: str) -> Artifact:
        try:
            return wait_for_artifact(self.store, version, self.artifact_timeout, on_progress=self.say)
        except ArtifactWaitTimeout as exc:
            raise CheckFailed.real(str(exc), store=self.store.location) from None

    def _healthy(self, report: Report, slot: Slot, label: str = "") -> bool:
        """Bounded wait for /health on the new slot (5xx and refused are expected while it starts), then its
        /versions must name the version being deployed."""
        suffix = f" {label}" if label else ""
        wait = Backoff(attempts=10_000, deadline=self.config.health_timeout, first=self.health_poll, factor=1.5,
                       cap=5.0)

        def probe() -> dict:
            if not self.runtime.running(slot):
                tail = getattr(self.runtime, "log_tail", lambda s: "")(slot)
                raise CheckFailed.real(f"process of {slot.version} on port {slot.port} exited while starting",
                                       **({"log_tail": tail} if tail else {}))
            return probes.health(self.client, slot.url, starting=True)

        if not report.add(run_check("healthy" + suffix, probe, wait)).ok:
            return False
        return report.add(run_check("version" + suffix,
                                    lambda: probes.versions(self.client, slot.url, slot.version), self.backoff)).ok

    # -- several replicas ----------------------------------------------------------------------
    def _roll(self, report: Report, version: str) -> Report:
        """Replace the replicas one at a time: stop one (HAProxy routes around it), start the new version on its
        port, wait until it is healthy and names the version, then the next. The others keep serving throughout.
        A replica that does not become healthy stops the roll and puts the replaced ones back; a red verification
        at the end (the canary, as for one process) puts all of them back."""
        ports = list(self.config.replica_ports)
        if self._stage(report, "balancer", lambda: self.runtime.balance(ports) or {"ports": ports}) is None:
            return report.finish(False)
        replaced: list[tuple[Slot | None, Slot]] = []
        for index, port in enumerate(ports, 1):
            label = f"replica {index}/{len(ports)}"
            before = self.runtime.slot_on(port)
            if before is not None and before.version == version:
                report.notes.append(f"{label} (port {port}) already runs {version}")
                continue
            self.say(f"{report.action} {self.config.name}: {label} on port {port}: "
                     f"{before.version if before else '(none)'} -> {version}")
            if before is not None:
                self._stage(report, f"stop {label}", lambda: self.runtime.stop(before) or {"version": before.version})
            new = self._stage(report, f"start {label}", lambda: self.runtime.start(version, port))
            if new is None or not self._healthy(report, new, label):
                replaced.append((before, new or Slot(version, port)))
                if before is None and new is not None:  # nothing to put back here: never leave it half-started
                    self.runtime.stop(new)
                report.notes.append(f"{label} of {version} never became healthy: the roll stopped there and the "
                                    "replaced replicas are put back")
                report.rollback = self._unroll(version, replaced)
                return report.finish(False)
            replaced.append((before, new))
            self.runtime.set_live(new)
            # Healthy is not enough: the load balancer must route to it again before the next one stops.
            if self._stage(report, f"in rotation {label}", lambda: self.runtime.in_rotation(new) or {}) is None:
                report.rollback = self._unroll(version, replaced)
                return report.finish(False)
        self._verify(report, version)
        if not report.green:
            report.rollback = self._unroll(version, replaced)
        return report

    def _unroll(self, version: str, replaced: list[tuple[Slot | None, Slot]]) -> Report:
        """Put the previous version back on every replaced replica (its venv is kept), one at a time, then verify."""
        olds = [before for before, _ in replaced if before is not None]
        if not olds:
            rb = Report(self.config.name, "rollback", "(none)", version)
            rb.notes.append(f"no previous version to roll back to; {version} left running for inspection")
            return rb.finish(False)
        rb = Report(self.config.name, "rollback", olds[0].version, version)
        for before, new in reversed(replaced):
            label = f"port {new.port}"
            self._stage(rb, f"stop new {label}", lambda: self.runtime.stop(new) or {"version": new.version})
            if before is None:
                continue
            back = self._stage(rb, f"restart old {label}", lambda: self.runtime.start(before.version, before.port))
            if back is None or not self._healthy(rb, back, label):
                return rb.finish(False)
            self.runtime.set_live(back)
            if self._stage(rb, f"in rotation {label}", lambda: self.runtime.in_rotation(back) or {}) is None:
                return rb.finish(False)
        self._verify(rb, olds[0].version)
        return rb.finish(rb.green and all(c.ok for c in rb.checks))

    def _verify(self, report: Report, version: str) -> Report:
        target = Target(self.config.public_url, version, self.config.canary, self.config.launch_timeout)
        if not self.config.canary:
            report.notes.append("no canary configured: end-to-end launch not verified (cannot be green)")
        for check in verify(target, self.client, self.backoff):
            report.add(check)
        ok = bool(self.config.canary) and all(c.ok for c in report.checks)
        return report.finish(ok)

    def _rollback(self, old: Slot | None, new: Slot) -> Report:
        if old is None:
            rb = Report(self.config.name, "rollback", "(none)", new.version)
            rb.notes.append(f"no previous version to roll back to; {new.version} left running for inspection")
            return rb.finish(False)
        rb = Report(self.config.name, "rollback", old.version, new.version)
        if not self.runtime.running(old):
            old = self._stage(rb, "restart old", lambda: self.runtime.start(old.version, old.port)) or old
            if not self._healthy(rb, old):
                return rb.finish(False)
        self._stage(rb, "switch back", lambda: self.runtime.switch(old) or {"port": old.port})
        self._verify(rb, old.version)
        self._stage(rb, "stop new", lambda: self.runtime.stop(new) or {"version": new.version})
        return rb.finish(rb.green and all(c.ok for c in rb.checks))

    def _stage(self, report: Report, name: str, fn: Callable[[], object]):  # noqa: ANN202
        """A one-shot stage (no retries: install, start and switch are local and deterministic)."""
        self.say(f"{report.action} {self.config.name}: {name}")
        holder: dict[str, object] = {}

        def call() -> dict:
            holder["value"] = fn()
            value = holder["value"]
            return value if isinstance(value, dict) else {"result": str(value)} if value is not None else {}

        result = report.add(run_check(name, call, Backoff(attempts=1)))
        return holder.get("value", {}) if result.ok else None

    def _free_port(self, old: Slot | None) -> int:
        assert self.config.backend_ports is not None  # kind "local" (instances.py checks it)
        a, b = self.config.backend_ports
        return b if old is not None and old.port == a else a

    def _finish(self, report: Report) -> Report:
        if self.deploy_dir is not None:
            records.append(self.deploy_dir, report)
            if report.rollback is not None and report.rollback.version != "(none)":
                records.append(self.deploy_dir, report.rollback)
        return report


def failed_check(name: str, reason: str) -> CheckResult:
    """A check that failed before it could run (for reports of refused actions)."""
    return CheckResult(name, False, [Attempt(1, False, 0.0, "real", reason)])
