"""`bindery settings from-binderhub FILE`: a BinderHub configuration carried over.

Reads a ``binderhub_config.py`` (run by traitlets' config loader, as BinderHub runs it) or the values
YAML of BinderHub's Helm chart (its ``config:`` section is the same traitlets configuration, plus a
few chart keys), and answers the equivalent bindery settings (``BINDERY_<NAME>`` values) and the
options that have no equivalent here, so nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import json

import yaml

# BinderHub's repository provider classes -> bindery's provider prefix (as in '<provider>/<spec>').
PROVIDERS = {"GitHubRepoProvider": "gh", "GitLabRepoProvider": "gl", "GitRepoProvider": "git",
             "GistRepoProvider": "gist", "ZenodoProvider": "zenodo", "FigshareProvider": "figshare",
             "HydroshareProvider": "hydroshare", "DataverseProvider": "dataverse",
             "CKANProvider": "ckan", "RepoProvider": "[^/]+"}
HOSTS = {"GitHubRepoProvider": "github.com", "GitLabRepoProvider": "gitlab.com"}


class ImportFailed(Exception):
    """The file cannot be read as a BinderHub configuration (its message says why)."""


@dataclass
class Carried:
    settings: dict[str, Any] = field(default_factory=dict)  # bindery setting -> value
    unmapped: list[str] = field(default_factory=list)  # "Class.trait" with no equivalent
    notes: list[str] = field(default_factory=list)

    def set(self, name: str, value: Any) -> None:
        self.settings[name] = value

    def merge(self, name: str, values: dict | list) -> None:
        current = self.settings.setdefault(name, type(values)())
        current.update(values) if isinstance(current, dict) else current.extend(values)


def load(path: Path) -> dict[str, dict[str, Any]]:
    """The file's traitlets configuration as {Class: {trait: value}} (chart values: flattened)."""
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    if path.suffix in (".yaml", ".yml"):
        return _chart_values(path)
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    try:
        config = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    except ConfigFileNotFound as exc:
        raise ImportFailed(f"{path}: {exc}") from None
    except Exception as exc:  # the operator's Python: say what failed, not a traceback
        raise ImportFailed(f"{path} could not be run as a traitlets config file: "
                           f"{type(exc).__name__}: {exc}") from None
    return {section: dict(values) for section, values in config.items() if hasattr(values, "items")}


def _chart_values(path: Path) -> dict[str, dict[str, Any]]:
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ImportFailed(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise ImportFailed(f"{path} is not a Helm values file (a YAML mapping)")
    config = {k: dict(v) for k, v in (values.get("config") or {}).items() if isinstance(v, dict)}
    chart: dict[str, Any] = {}
    hub = (values.get("jupyterhub") or {})
    spawner = ((hub.get("hub") or {}).get("config") or {}).get("BinderSpawner") or {}
    if spawner.get("cors_allow_origin"):
        chart["spawner_cors_allow_origin"] = spawner["cors_allow_origin"]
    if (values.get("cors") or {}).get("allowOrigin"):  # older charts
        chart["cors_allow_origin"] = values["cors"]["allowOrigin"]
    registry = values.get("registry") or {}
    for key in ("url", "username", "password"):
        if registry.get(key):
            chart[f"registry_{key}"] = registry[key]
    cull = hub.get("cull") or {}
    for key in ("timeout", "maxAge"):
        if cull.get(key) is not None:
            chart[f"cull_{key}"] = cull[key]
    single = hub.get("singleuser") or {}
    if (single.get("memory") or {}).get("limit"):
        chart["server_memory"] = single["memory"]["limit"]
    if (single.get("cpu") or {}).get("limit"):
        chart["server_cpu"] = single["cpu"]["limit"]
    if chart:
        config["chart"] = chart
    return config


def _registry(carried: Carried, image_prefix: str) -> None:
    """BinderHub's image_prefix names the registry too ('registry.example.org/binder/prefix-')."""
    host, _, path = image_prefix.partition("/")
    if "." in host or ":" in host or host == "localhost":
        carried.set("registry_url", f"https://{host}")
        carried.set("image_prefix", path)
        carried.notes.append(f"image_prefix {image_prefix!r}: registry https://{host}, prefix "
                             f"{path!r} (use http:// in registry_url for a registry without TLS)")
    else:
        carried.set("image_prefix", image_prefix)


def _spec_pattern(provider: str, pattern: str) -> str:
    """A BinderHub provider's spec regex as a bindery rule on '<provider>/<spec>'."""
    prefix = PROVIDERS[provider]
    if pattern.startswith("^"):
        return f"^{prefix}/(?:{pattern[1:]})"
    return f"^{prefix}/.*(?:{pattern})"


Rule = Callable[[Carried, Any], None]


def _to(name: str, convert: Callable[[Any], Any] = lambda v: v) -> Rule:
    return lambda carried, value: carried.set(name, convert(value))


RULES: dict[tuple[str, str], Rule] = {
    ("BinderHub", "cors_allow_origin"): _to("cors_allow_origin"),
    ("BinderHub", "hub_url"): _to("hub_url", lambda v: str(v).rstrip("/")),
    ("BinderHub", "hub_api_token"): _to("hub_api_token"),
    ("BinderHub", "image_prefix"): _registry,
    ("BinderHub", "build_memory_limit"): _to("build_memory_limit", str),
    ("BinderHub", "pod_quota"): _to("max_servers", int),
    ("LaunchQuota", "total_quota"): _to("max_servers", int),
    ("BinderHub", "per_repo_quota"): _to("max_servers_per_repo", int),
    ("BinderHub", "concurrent_build_limit"): _to("build_slots", int),
    ("BinderHub", "build_token_secret"): _to("build_token_secret", str),
    ("BinderHub", "build_token_expires_seconds"): _to("build_token_expiry_seconds", int),
    ("BinderHub", "enable_api_only_mode"): _to("api_only", bool),
    ("BinderHub", "badge_base_url"): _to("public_url", str),
    ("BinderHub", "ban_networks"): lambda c, v: c.merge("blocked_networks", [str(n) for n in v]),
    ("BinderSpawner", "cors_allow_origin"): _to("cors_allow_origin"),
    ("Launcher", "retries"): _to("launch_retries", int),
    ("Launcher", "launch_timeout"): _to("launch_timeout", float),
    ("DockerRegistry", "url"): _to("registry_url", lambda v: str(v).rstrip("/")),
    ("KubernetesBuildExecutor", "memory_limit"): _to("build_memory_limit", str),
    ("chart", "cors_allow_origin"): _to("cors_allow_origin"),
    ("chart", "spawner_cors_allow_origin"): _to("cors_allow_origin"),
    ("chart", "registry_url"): _to("registry_url", lambda v: str(v).rstrip("/")),
    ("chart", "cull_timeout"): _to("cull_idle_seconds", int),
    ("chart", "cull_maxAge"): _to("cull_max_age_seconds", int),
    ("chart", "server_memory"): _to("server_mem_limit", str),
    ("chart", "server_cpu"): _to("server_cpu_limit", float),
}


def _provider_rule(carried: Carried, provider: str, trait: str, value: Any,
                   higher: int | None) -> bool:
    if trait == "banned_specs":
        carried.merge("banned_specs", [_spec_pattern(provider, p) for p in value])
    elif trait == "allowed_specs":
        carried.merge("allowed_specs", [_spec_pattern(provider, p) for p in value])
    elif trait == "high_quota_specs" and higher:
        carried.merge("quota_tiers", {_spec_pattern(provider, p): higher for p in value})
    elif trait in ("access_token", "private_token") and provider in HOSTS:
        carried.merge("git_credentials", {f"https://{HOSTS[provider]}/": str(value)})
    elif trait == "hostname" and provider in HOSTS:
        url = str(value) if "://" in str(value) else f"https://{value}"
        name = "github_url" if provider == "GitHubRepoProvider" else "gitlab_url"
        carried.set(name, url.rstrip("/"))
    elif trait == "api_base_path" and provider == "GitHubRepoProvider":
        carried.set("github_api_url", str(value).replace("{hostname}", urlsplit(
            carried.settings.get("github_url", "https://github.com")).netloc).rstrip("/"))
    else:
        return False
    return True


def carry_over(config: dict[str, dict[str, Any]]) -> Carried:
    carried = Carried()
    higher = (config.get("BinderHub") or {}).get("per_repo_quota_higher")
    for section, values in config.items():
        for trait, value in values.items():
            key = (section, trait)
            try:
                if key in RULES:
                    RULES[key](carried, value)
                    continue
                if section in PROVIDERS and _provider_rule(carried, section, trait, value, higher):
                    continue
            except (TypeError, ValueError) as exc:
                raise ImportFailed(f"{section}.{trait} = {value!r}: not a value bindery can take "
                                   f"({exc})") from None
            if key != ("BinderHub", "per_repo_quota_higher"):  # that one goes with quota_tiers
                carried.unmapped.append(f"{section}.{trait}" if section != "chart"
                                        else f"chart: {trait}")
    if "hub_url" in carried.settings:
        carried.notes.append("hub_url is where people reach servers; bindery calls the hub's "
                             "REST API at hub_api_url: set it too")
    return carried


SECRETS = {"hub_api_token", "build_token_secret", "git_credentials"}


def env_lines(carried: Carried, show_secrets: bool = False) -> list[str]:
    """The settings as BINDERY_<NAME>=value lines (JSON for lists and objects)."""
    lines = []
    for name, value in sorted(carried.settings.items()):
        text = json.dumps(value) if isinstance(value, (list, dict)) else (
            str(value).lower() if isinstance(value, bool) else str(value))
        if name in SECRETS and not show_secrets:
            text = "<secret: run with --show-secrets to print it>"
        lines.append(f"BINDERY_{name.upper()}={text}")
    return lines


def checked(carried: Carried) -> None:
    """Raise ImportFailed unless bindery accepts every carried value."""
    from pydantic import ValidationError

    from bindery.settings import Settings

    try:
        Settings(**carried.settings)
    except ValidationError as exc:
        raise ImportFailed(f"the carried-over values are not valid bindery settings: {exc}") \
            from None

