"""`bindery deploy` of an instance that is a Helm release: chart → helm upgrade → every rollout → canary → (rollback).

Why this shape: the same staging → verify → prod discipline as the local kind (bindery/deploy/flow.py), where
"start the new version next to the old one" is Kubernetes' rolling update. `helm upgrade` returning says only that
the API server accepted the objects, so the deploy then waits, bounded, for every Deployment, StatefulSet and
DaemonSet of the release to finish its rollout (bindery/deploy/rollout.py), and only then launches the canary
through the public URL. A red deploy rolls back with `helm rollback` to the revision that was live before, waits for
that rollout too, and verifies it again; the report says each step with its evidence.

The release's images are tagged ``image_tag(version)`` (bindery/artifacts/tags.py), and the chart comes from the
artifact store (packaged by `bindery release --chart` for the same version) unless the instance names one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bindery.deploy.classify import CheckFailed
from bindery.deploy.flow import Deployer
from bindery.deploy.helm import HelmRelease, version_of_revision
from bindery.deploy.instances import HelmInstance, InstanceConfig
from bindery.deploy.report import Report
from bindery.deploy.rollout import Cluster, wait_release
from bindery.artifacts.tags import VersionNameError, image_tag
from bindery.artifacts.wait import ArtifactWaitTimeout, wait_for_artifact


def helm_release(config: InstanceConfig) -> HelmRelease:
    h = _helm(config)
    cluster = Cluster(api_url=h.api_url, token_file=h.token_file, kubeconfig=h.kubeconfig, context=h.kube_context)
    return HelmRelease(h.release, h.namespace, cluster, h.helm_timeout)


def _helm(config: InstanceConfig) -> HelmInstance:
    if config.helm is None:
        raise ValueError(f"instance {config.name} is not a Helm release (kind = {config.kind!r})")
    return config.helm




@dataclass
class HelmDeployer(Deployer):
    """The deploy flow for ``kind = "helm"``; ``runtime`` is the instance's HelmRelease (see ``helm_release``)."""

    rollout_poll: float = 1.0  # first pause between rollout polls (grows to 5 s)

    @property
    def release(self) -> HelmRelease:
        assert isinstance(self.runtime, HelmRelease)
        return self.runtime

    def deploy(self, version: str | None = None) -> Report:
        version = version or self.config.version
        report = Report(self.config.name, "deploy", version)
        history = self._stage(report, "history", lambda: {"revisions": self.release.history()})
        if history is None:
            return self._finish(report.finish(False))
        revisions = history["revisions"]
        live = next((r for r in reversed(revisions) if r.get("status") == "deployed"), None)
        if live is not None:
            report.previous_version = version_of_revision(revisions, live) or f"revision {live['revision']}"
        tag = self._stage(report, "image tag", lambda: {"tag": self._tag(version)})
        if tag is None:
            return self._finish(report.finish(False))
        chart = self._stage(report, "chart", lambda: self._chart(version))
        if chart is None:
            return self._finish(report.finish(False))
        values = [self._path(v) for v in _helm(self.config).values]
        upgraded = self._stage(report, "helm upgrade",
                               lambda: self.release.upgrade(Path(chart["path"]), version, tag["tag"], values))
        if upgraded is not None and self._stage(report, "rollout", self._wait_rollout) is not None:
            self._verify(report, version)
        else:
            report.finish(False)
        if not report.green:
            report.rollback = self._rollback_to(live, live and version_of_revision(revisions, live), version)
        return self._finish(report)

    # -- stages --------------------------------------------------------------------------------
    @staticmethod
    def _tag(version: str) -> str:
        try:
            return image_tag(version)
        except VersionNameError as exc:
            raise CheckFailed.real(str(exc)) from None

    def _path(self, name: str) -> Path:
        path = Path(name).expanduser()
        return path if path.is_absolute() or self.deploy_dir is None else self.deploy_dir / path

    def _chart(self, version: str) -> dict[str, Any]:
        configured = _helm(self.config).chart
        if configured:
            path = self._path(configured)
            if not path.exists():
                raise CheckFailed.real(f"chart {path} (instance setting helm.chart) does not exist")
            return {"path": str(path), "source": "instance"}
        try:
            artifact = wait_for_artifact(self.store, version, self.artifact_timeout, on_progress=self.say,
                                         kind="chart")
        except ArtifactWaitTimeout as exc:
            raise CheckFailed.real(f"{exc} (`bindery release --chart` packages it)", store=self.store.location) from None
        return {"path": artifact.location, "source": "store", "sha256": artifact.sha256}

    def _wait_rollout(self) -> dict[str, Any]:
        h = _helm(self.config)
        return asyncio.run(wait_release(self.release.cluster, h.namespace, h.release, h.rollout_timeout,
                                        say=self.say, poll=self.rollout_poll))

    def _rollback_to(self, live: dict[str, Any] | None, back: str | None, failed: str) -> Report:
        """Back to the revision that was live before this deploy, its rollout awaited and verified again."""
        if live is None:
            rb = Report(self.config.name, "rollback", "(none)", failed)
            rb.notes.append(f"no earlier deployed revision of {self.release.release} to roll back to; "
                            f"{failed} left as it is for inspection")
            return rb.finish(False)
        rb = Report(self.config.name, "rollback", back or f"revision {live['revision']}", failed)
        if self._stage(rb, "helm rollback", lambda: self.release.rollback(int(live["revision"]))) is None:
            return rb.finish(False)
        if self._stage(rb, "rollout", self._wait_rollout) is None:
            return rb.finish(False)
        if back is None:
            rb.notes.append(f"revision {live['revision']} names no bindery version (description "
                            f"{live.get('description')!r}): the version check of the verification will fail")
        self._verify(rb, back or "")
        return rb.finish(rb.green and all(c.ok for c in rb.checks))
