"""bindery's settings: one typed object made of groups, each setting declared once with its help text.

Each group is a model of its own module, named for the part of bindery that uses it:

    settings.service     the web service (service_settings.py)
    settings.state       what outlives a process (state_settings.py)
    settings.stack       the embedded single-machine stack (stack_settings.py)
    settings.registry    the OCI registry (registry_settings.py)
    settings.builds      builds and buildpacks (builds_settings.py)
    settings.kubernetes  builds as pods (kubernetes_settings.py)
    settings.launches    launches, servers and quotas (launches_settings.py)
    settings.pools       warm pools (pools_settings.py)
    settings.providers   repository hosts and DOI services (providers_settings.py)
    settings.security    the front door's rules and limits (security_settings.py)
    settings.signin      sign-in, people's servers and their own credentials (signin_settings.py)
    settings.deploy      releases and deploys (deploy_settings.py)

Field names are unique across groups, so every setting keeps its one flat environment name,
``BINDERY_<FIELD>``: ``BINDERY_BUILD_TIMEOUT`` sets ``settings.builds.build_timeout``. The flat names
also work in code written before the groups: ``Settings(build_timeout=5)``, ``settings.build_timeout``
and ``settings.model_copy(update={"build_timeout": 5})`` are routed to the group. ``bindery settings``
prints every setting with its group, environment name and help.

Nothing here reads a file or the network: what the data folder records (the hub's token, the servers'
subnet the hub chose) is read by bindery/datadir.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from bindery.datadir import StackPaths, stack_id_of
from bindery.settings.builds_settings import BuildSettings
from bindery.settings.deploy_settings import DeploySettings
from bindery.settings.kubernetes_settings import KubernetesSettings
from bindery.settings.launches_settings import LaunchSettings
from bindery.settings.pools_settings import PoolSettings
from bindery.settings.providers_settings import ProviderSettings
from bindery.settings.registry_settings import RegistrySettings
from bindery.settings.security_settings import SecuritySettings
from bindery.settings.service_settings import ServiceSettings
from bindery.settings.signin_settings import SignInSettings
from bindery.settings.stack_settings import StackSettings
from bindery.settings.state_settings import StateSettings

GROUPS: dict[str, type[BaseModel]] = {
    "service": ServiceSettings,
    "state": StateSettings,
    "stack": StackSettings,
    "registry": RegistrySettings,
    "builds": BuildSettings,
    "kubernetes": KubernetesSettings,
    "launches": LaunchSettings,
    "pools": PoolSettings,
    "providers": ProviderSettings,
    "security": SecuritySettings,
    "signin": SignInSettings,
    "deploy": DeploySettings,
}

# flat setting name -> its group (the compatibility path for the names before grouping)
FIELD_GROUPS: dict[str, str] = {name: group for group, model in GROUPS.items() for name in model.model_fields}
# derived values that moved into a group under a new name: old name -> (group, attribute)
RENAMED: dict[str, tuple[str, str]] = {
    "web_url": ("service", "web_url"),
    "registry_host": ("registry", "host"),
}
assert not set(FIELD_GROUPS) & set(GROUPS), "a setting may not be named like a group"


def route(values: dict[str, Any]) -> dict[str, Any]:
    """Flat names (``build_timeout``) moved into their group's dict (``{"builds": {...}}``)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        group = FIELD_GROUPS.get(key.lower()) if isinstance(key, str) else None
        if group is None:
            if key in GROUPS and isinstance(out.get(key), dict):
                base = value if isinstance(value, dict) else dict(value)
                out[key] = {**base, **out[key]}  # flat names given beside the group win
            else:
                out[key] = value
            continue
        bucket = out.setdefault(group, {})
        if isinstance(bucket, BaseModel):
            bucket = out[group] = dict(bucket)
        bucket[key.lower()] = value
    return out


class RoutedInit(PydanticBaseSettingsSource):
    """Keyword arguments, flat names routed to their group."""

    def __init__(self, settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self.init = init

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return route(self.init())


def _flat_model() -> type[BaseSettings]:
    """Every group's fields on one flat model, so pydantic-settings parses ``BINDERY_<FIELD>`` for each
    (JSON for lists and dicts, booleans, paths) exactly as it parsed them before the groups."""
    fields: dict[str, Any] = {}
    for model in GROUPS.values():
        for name, info in model.model_fields.items():
            fields[name] = (info.annotation, info)
    return create_model("FlatSettings", __base__=BaseSettings, **fields)


class _FlatEnv(PydanticBaseSettingsSource):
    """``BINDERY_<FIELD>`` environment variables, routed to their group."""

    flat: type[BaseSettings] | None = None

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if _FlatEnv.flat is None:
            _FlatEnv.flat = _flat_model()
        return route(EnvSettingsSource(_FlatEnv.flat, env_prefix="BINDERY_")())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BINDERY_", extra="ignore", frozen=False)

    data_dir: Path = Field(
        Path.home() / ".bindery",
        description="Folder holding all state of the embedded stack: configs, image stores, sockets, "
        "logs, secrets, the hub database and the registry's blobs.",
    )
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    stack: StackSettings = Field(default_factory=StackSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    builds: BuildSettings = Field(default_factory=BuildSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    launches: LaunchSettings = Field(default_factory=LaunchSettings)
    pools: PoolSettings = Field(default_factory=PoolSettings)
    providers: ProviderSettings = Field(default_factory=ProviderSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    signin: SignInSettings = Field(default_factory=SignInSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # keyword arguments win over the environment; both may use the flat names
        return (RoutedInit(settings_cls, init_settings), env_settings, _FlatEnv(settings_cls))

    # -- the names before grouping ---------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        group = FIELD_GROUPS.get(name)
        if group is not None:
            return getattr(getattr(self, group), name)
        if name in RENAMED:
            group, attr = RENAMED[name]
            return getattr(getattr(self, group), attr)
        return super().__getattr__(name)  # type: ignore[misc]

    def __setattr__(self, name: str, value: Any) -> None:
        group = FIELD_GROUPS.get(name)
        if group is not None:
            setattr(getattr(self, group), name, value)
            return
        super().__setattr__(name, value)

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Settings:
        """A copy whose groups are copies too (changing the copy never changes this object);
        ``update`` may use flat names."""
        routed = route(update or {})
        groups = {g: v for g, v in routed.items() if g in GROUPS and isinstance(v, dict)}
        rest = {k: v for k, v in routed.items() if k not in groups}
        copy = super().model_copy(update=rest, deep=deep)
        for group in GROUPS:
            current = getattr(copy, group)
            object.__setattr__(copy, group, current.model_copy(update=groups.get(group)))
        return copy

    def flat_items(self) -> Iterator[tuple[str, str, FieldInfo, Any]]:
        """(group, name, field, value) of every setting, in declaration order ("" for data_dir)."""
        yield "", "data_dir", type(self).model_fields["data_dir"], self.data_dir
        for group, model in GROUPS.items():
            values = getattr(self, group)
            for name, info in model.model_fields.items():
                yield group, name, info, getattr(values, name)

    # -- derived values (pure: no file is read) ---------------------------------------------------
    @property
    def paths(self) -> StackPaths:
        """The data folder's layout (bindery/datadir.py)."""
        return StackPaths.of(self)

    @property
    def sign_in_callback_url(self) -> str:
        """Where the hub sends a person back after signing in (bindery/web/signin.py), as the
        hub's service registration names it."""
        return self.service.web_url.rstrip("/") + "/oauth_callback"

    @property
    def hub_public(self) -> str:
        """Public URL of the hub's proxy (no trailing slash)."""
        return (self.launches.hub_url or f"http://127.0.0.1:{self.stack.proxy_port}").rstrip("/")

    @property
    def logs_dir(self) -> Path:
        return self.paths.logs

    @property
    def data_cache_dir(self) -> Path:
        """Per-data_dir caches of the service (fetched DOI records, treeless clones for abbreviated SHAs)."""
        return self.paths.work_cache

    @property
    def build_logs_path(self) -> Path:
        return self.builds.build_log_dir or self.data_dir / "build-logs"

    @property
    def stack_id(self) -> str:
        """Short id of the embedded stack (from its data_dir): labels its containers, names its
        network and firewall table."""
        return stack_id_of(Path(self.data_dir).expanduser().absolute())

    @property
    def server_subnet_file(self) -> Path:
        """Where the embedded hub's start records the servers' /24 it chose."""
        return self.paths.conf / "server-subnet"

    @property
    def state_path(self) -> Path:
        """The embedded state store's database (used when state_url is empty)."""
        return self.data_dir / "state.sqlite"

    @property
    def artifacts_path(self) -> Path:
        return self.deploy.artifact_dir or self.data_dir / "artifacts"

    @property
    def deploy_path(self) -> Path:
        return self.deploy.deploy_dir or self.data_dir / "deploy"

    @property
    def secrets_dir(self) -> Path:
        return self.paths.secrets

    @property
    def sockets_dir(self) -> Path:
        return self.paths.pids

    @property
    def build_socket(self) -> str:
        return self.stack.build_docker_host or f"unix://{self.sockets_dir / 'build.sock'}"

    @property
    def run_socket(self) -> str:
        return self.stack.run_docker_host or f"unix://{self.sockets_dir / 'run.sock'}"

    @property
    def hub_token_file(self) -> Path:
        """Where `bindery up` writes the bindery service's hub token (and the service reads it)."""
        return self.secrets_dir / "hub-service-token"
