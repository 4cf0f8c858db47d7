"""helm for the stand-in: the driver's exact argv, rendered by the real helm binary, applied over HTTP/JSON.

Why: the real `helm upgrade` cannot talk to a JSON-only stand-in (helm 3.17 stores its releases as protobuf
Secrets, see k8s_standin.py), and no cluster runs here. So each command the driver runs is recorded verbatim, and
``upgrade`` runs the real ``helm template`` with the same release, chart, namespace, values files and --set-string
flags, then creates or replaces the rendered workloads in the stand-in the way helm's apply would. Revisions
(history, rollback) are kept here as helm keeps them in its release Secrets. What this does not show: helm's own
three-way merge, hooks, and its release storage on a real API server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from bindery.deploy.classify import CheckFailed
from bindery.deploy.helm import run_helm

from .k8s_standin import KINDS, StandIn


def _flag(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


@dataclass
class HelmOnStandIn:
    standin: StandIn
    calls: list[list[str]] = field(default_factory=list)
    revisions: list[dict[str, Any]] = field(default_factory=list)
    fail_upgrade: str = ""  # non-empty: the next upgrade fails with this message (as helm would print it)

    def __call__(self, args: list[str], what: str, timeout: float, env: dict[str, str] | None) -> str:
        self.calls.append(list(args))
        assert _flag(args, "--kube-apiserver") == [self.standin.url], args  # the cluster is named explicitly
        command = args[0]
        if command == "history":
            if not self.revisions:
                raise CheckFailed.real(f"{what} failed (1): Error: release: not found")
            return json.dumps([{k: r[k] for k in ("revision", "status", "app_version", "chart", "description")}
                               for r in self.revisions])
        if command == "upgrade":
            return self._upgrade(args, what, timeout)
        if command == "rollback":
            target = next(r for r in self.revisions if r["revision"] == int(args[2]))
            self._apply(target["namespace"], target["objects"])
            self._record(target["namespace"], target["app_version"], target["objects"], target["chart"],
                         f"Rollback to {target['revision']}")
            return "Rollback was a success! Happy Helming!\n"
        raise AssertionError(f"unexpected helm command {args}")

    def _upgrade(self, args: list[str], what: str, timeout: float) -> str:
        assert args[:2] == ["upgrade", "--install"]
        release, chart = args[2], args[3]
        [namespace] = _flag(args, "--namespace")
        render = ["template", release, chart, "--namespace", namespace]
        for name in ("--values", "--set-string"):
            for value in _flag(args, name):
                render += [name, value]
        manifest = run_helm(render, "helm template", timeout)  # the real binary, the driver's own flags
        meta = yaml.safe_load(run_helm(["show", "chart", chart], "helm show chart", timeout))
        if self.fail_upgrade:
            message, self.fail_upgrade = self.fail_upgrade, ""
            raise CheckFailed.real(f"{what} failed (1): {message}")
        objects = [d for d in yaml.safe_load_all(manifest) if d]
        self._apply(namespace, objects)
        [description] = _flag(args, "--description")
        revision = self._record(namespace, meta["appVersion"], objects, f"{meta['name']}-{meta['version']}",
                                description)
        return json.dumps({"name": release, "version": revision, "namespace": namespace,
                           "info": {"status": "deployed"}, "chart": {"metadata": meta}})

    def _record(self, namespace: str, app_version: str, objects: list[dict[str, Any]], chart: str,
                description: str) -> int:
        for r in self.revisions:
            if r["status"] == "deployed":
                r["status"] = "superseded"
        number = len(self.revisions) + 1
        self.revisions.append({"revision": number, "status": "deployed", "app_version": app_version,
                               "chart": chart, "namespace": namespace, "objects": objects,
                               "description": description})
        return number

    def _apply(self, namespace: str, objects: list[dict[str, Any]]) -> None:
        """Create or replace each workload through the stand-in's HTTP API (what helm's apply amounts to here)."""
        plural_of = {kind: plural for plural, (_, kind) in KINDS.items()}
        with httpx.Client(base_url=self.standin.url, timeout=10) as http:
            for obj in objects:
                plural = plural_of.get(obj["kind"])
                if plural is None:
                    continue  # Services, ConfigMaps …: nothing the rollout wait reads
                prefix = "/api/v1" if obj["apiVersion"] == "v1" else f"/apis/{obj['apiVersion']}"
                base = f"{prefix}/namespaces/{namespace}/{plural}"
                name = obj["metadata"]["name"]
                if http.get(f"{base}/{name}").status_code == 404:
                    http.post(base, json=obj).raise_for_status()
                else:
                    http.put(f"{base}/{name}", json=obj).raise_for_status()
