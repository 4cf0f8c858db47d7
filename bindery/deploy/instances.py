"""Instance configuration: one TOML file per instance in the deploy folder (a git repository).

Why files in git: the deployed version and the settings of staging and prod are declared, reviewed and versioned
like a deploy repository; `bindery bump` and `bindery promote` change them by commits, never by hand-typed hashes.

``<deploy_dir>/staging.toml``::

    version = "0.1.dev42+g1a2b3c4d5e6f"
    public_port = 9585                    # stable front port people use (the front proxy listens here)
    backend_ports = [19585, 19586]        # the two slots old and new versions run on, side by side
    canary = "git/http%3A%2F%2F127.0.0.1%3A9418%2Fcanary.git/HEAD"

    [settings]                            # BINDERY_* for this instance's processes (own ports, own data)
    data_dir = "/srv/bindery/staging"
    hub_port = 18081
    proxy_port = 18000

An instance on Kubernetes is a Helm release (``kind = "helm"``; see bindery/deploy/helm.py)::

    kind = "helm"
    version = "0.1.dev42+g1a2b3c4d5e6f"
    canary = "git/https%3A%2F%2Fgithub.com%2Forg%2Fcanary/HEAD"

    [helm]
    release = "bindery-staging"
    namespace = "binder-staging"
    public_url = "https://staging.binder.example.org"
    values = ["staging-values.yaml"]      # relative to the deploy folder
    kubeconfig = "~/.kube/staging"        # or api_url (+ token_file); neither: the in-cluster service account
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """An instance file is missing or invalid; the message names the file."""


class HelmInstance(BaseModel):
    """Where and how an instance of ``kind = "helm"`` runs: a Helm release in a namespace of a cluster."""

    model_config = ConfigDict(extra="forbid")

    release: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=53,
                         description="Helm release name (also the app.kubernetes.io/instance label of its objects).")
    namespace: str = Field("default", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63,
                           description="Namespace of the release.")
    public_url: str = Field(pattern=r"^https?://", description="URL people use (the chart's Ingress/HTTPRoute); "
                            "the canary launches through it.")
    chart: str = Field("", description="Chart to install. Empty: the chart `bindery release --chart` packaged "
                       "for the version (artifact store). Else a chart folder or .tgz, relative to the deploy folder.")
    values: list[str] = Field(default_factory=list,
                              description="Values files (relative to the deploy folder), passed in order with -f.")
    kubeconfig: str = Field("", description="kubeconfig file of the cluster ('' with api_url '': in-cluster).")
    kube_context: str = Field("", description="Context in the kubeconfig ('' = its current context).")
    api_url: str = Field("", description="API server URL (instead of a kubeconfig).")
    token_file: str = Field("", description="File with a bearer token for api_url ('' = none).")
    rollout_timeout: float = Field(600.0, gt=0, description="Seconds every Deployment/StatefulSet/DaemonSet of the "
                                   "release has to finish its rollout after helm upgrade (or rollback).")
    helm_timeout: float = Field(300.0, gt=0, description="Seconds one helm command (upgrade, rollback, history) "
                                "may take.")


class InstanceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", description="Instance name (the file name without .toml).")
    version: str = Field("", description="The bindery version this instance runs (set by bump/promote).")
    kind: Literal["local", "helm"] = Field(
        "local", description="'local': versions as processes on this machine behind a front proxy; 'helm': a Helm "
        "release on Kubernetes ([helm] table).")
    helm: HelmInstance | None = Field(None, description="The Helm release (kind = 'helm').")
    public_port: int | None = Field(None, description="Port people use; a small front proxy forwards it to the "
                                    "live slot (kind 'local').")
    public_host: str = Field("127.0.0.1", description="Address the front proxy listens on.")
    backend_ports: tuple[int, int] | None = Field(None, description="Two ports: the live version and the new one "
                                                  "(kind 'local').")
    replica_ports: list[int] = Field(
        default_factory=list,
        description="Ports of several replicas behind HAProxy at public_port (instead of the two slots behind the "
        "front proxy): a deploy replaces them one at a time, each health-checked before the next. Empty: one "
        "process, blue/green on backend_ports.")
    canary: str = Field("", description="'<provider>/<spec>' launched to verify a deploy and by `bindery canary`.")
    command: list[str] = Field(default_factory=lambda: ["bindery", "serve"],
                               description="Command (inside the version's venv bin/) that serves the instance.")
    health_timeout: float = Field(120.0, description="Seconds a new version has to become healthy.")
    launch_timeout: float = Field(300.0, description="Seconds the canary launch has to reach ready.")
    settings: dict[str, Any] = Field(default_factory=dict, description="BINDERY_* settings of this instance.")
    dependencies: Literal["shared", "own"] = Field(
        "shared",
        description="'shared': a version's venv gets only the bindery wheel (pip --no-deps) and finds its "
        "dependencies in the environment of the bindery that runs the deploy (a .pth line), so an install takes "
        "seconds; a version that needs a dependency that environment lacks fails to start, named in the report. "
        "'own': a full pip install of the wheel and its dependencies into the venv (minutes, needs an index).")
    stack: bool = Field(True, description="Bring up this instance's stack (engines, registry, hub; not its web "
                        "service: the front proxy owns the public port) before starting a version.")

    @model_validator(mode="after")
    def _kind_fields(self) -> "InstanceConfig":
        if self.kind == "helm" and self.helm is None:
            raise ValueError("kind = 'helm' needs a [helm] table (release, namespace, public_url)")
        if self.kind == "local":
            if self.helm is not None:
                raise ValueError("a [helm] table needs kind = 'helm'")
            if self.public_port is None or self.backend_ports is None:
                raise ValueError("kind = 'local' needs public_port and backend_ports")
        return self

    @property
    def public_url(self) -> str:
        if self.helm is not None:
            return self.helm.public_url.rstrip("/")
        return f"http://{self.public_host}:{self.public_port}"

    def env(self, port: int) -> dict[str, str]:
        """Environment for the instance's process serving on slot ``port``."""
        env = {f"BINDERY_{k.upper()}": _env_value(v) for k, v in self.settings.items()}
        env["BINDERY_PORT"] = str(port)
        env["BINDERY_HOST"] = "127.0.0.1"
        env.setdefault("BINDERY_PUBLIC_URL", self.public_url + "/")
        # The front proxy (bindery/deploy/front.py) reaches the slot from 127.0.0.1 and says who the client is.
        env.setdefault("BINDERY_TRUSTED_PROXIES", '["127.0.0.1/32"]')
        return env


def _env_value(value: Any) -> str:
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value)
    return str(value)


def path_of(deploy_dir: Path, name: str) -> Path:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise ConfigError(f"instance name {name!r}: use lower-case letters, digits, '-' and '_'")
    return deploy_dir / f"{name}.toml"


def load(deploy_dir: Path, name: str) -> InstanceConfig:
    path = path_of(deploy_dir, name)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in deploy_dir.glob("*.toml"))) or "none"
        raise ConfigError(f"no instance {name!r}: {path} does not exist (instances: {known})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return InstanceConfig(name=name, **data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_all(deploy_dir: Path) -> list[InstanceConfig]:
    configs = [load(deploy_dir, p.stem) for p in sorted(deploy_dir.glob("*.toml"))]
    problems = clashes(configs)
    if problems:
        raise ConfigError("instances clash: " + "; ".join(problems))
    return configs


def clashes(configs: list[InstanceConfig]) -> list[str]:
    """Ports and data folders two instances share (they must run side by side on one machine)."""
    seen: dict[str, str] = {}
    problems = []
    for c in configs:
        if c.helm is not None:  # on a cluster: only the release itself must not be shared
            keys = [f"helm release {c.helm.namespace}/{c.helm.release} ({c.helm.kubeconfig or c.helm.api_url})"]
            for key in keys:
                if key in seen and seen[key] != c.name:
                    problems.append(f"{seen[key]} and {c.name} both use {key}")
                seen[key] = c.name
            continue
        keys = [f"port {p}" for p in (c.public_port, *(c.backend_ports or ()), *c.replica_ports)]
        keys += [f"port {v}" for k, v in c.settings.items() if k.endswith("_port")]
        if "data_dir" in c.settings:
            keys.append(f"data_dir {Path(str(c.settings['data_dir'])).expanduser()}")
        else:
            keys.append("data_dir <default>")
        for key in set(keys):
            if key in seen and seen[key] != c.name:
                problems.append(f"{seen[key]} and {c.name} both use {key}")
            seen[key] = c.name
    return problems


_VERSION_LINE = re.compile(r'^(\s*version\s*=\s*)(["\']).*?\2(.*)$', re.MULTILINE)


def set_version(deploy_dir: Path, name: str, version: str) -> Path:
    """Rewrite only the ``version = "..."`` line, keeping comments and layout (reviewable one-line diffs)."""
    path = path_of(deploy_dir, name)
    text = path.read_text()
    head, _, rest = text.partition("\n[")  # only the top-level table, never a [settings] key
    if _VERSION_LINE.search(head):
        head = _VERSION_LINE.sub(lambda m: f'{m.group(1)}"{version}"{m.group(3)}', head, count=1)
    else:
        head = f'version = "{version}"\n' + head
    path.write_text(head + ("\n[" + rest if rest else ""))
    load(deploy_dir, name)  # still valid
    return path
