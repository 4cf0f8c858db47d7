"""What one repo2docker run needs to know about bindery's build settings.

bindery (the parent process) resolves the settings and the auto probe into a ``BuildOptions`` and
hands it to the repo2docker subprocess as ``BINDERY_BUILD_*`` environment variables (that process's
environment is built from scratch, so nothing else of bindery's leaks in); repo2docker's config file
reads them back with ``from_environ``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

PREFIX = "BINDERY_BUILD_"


@dataclass(frozen=True)
class BuildOptions:
    mode: str = "mirror"  # "standard" (repo2docker's buildpacks) or "mirror" (bindery's)
    base_image: str = ""  # the Jupyter-ready image mirror builds start FROM
    base_suite: str = "bookworm"  # the Debian suite of base_image
    python_version: str = "3.11"  # the Python of base_image
    python_suites: str = "3.13=trixie"  # other obtainable Pythons: "version=suite,..."
    pypi_index_url: str = "https://pypi.org/simple"
    installer: str = "uv"  # "uv" or "pip"
    runtime_strict: bool = False
    environment_yml: str = "translate"  # "translate" or "refuse"
    allowed_registries: str = ""  # registries images may come from (comma-separated)

    @property
    def suites(self) -> dict[str, str]:
        pairs = (item.partition("=") for item in self.python_suites.split(",") if "=" in item)
        return {version.strip(): suite.strip() for version, _, suite in pairs}

    def to_environ(self) -> dict[str, str]:
        return {PREFIX + k.upper(): ("1" if v is True else "0" if v is False else str(v))
                for k, v in asdict(self).items()}

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> BuildOptions:
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = raw == "1" if f.type in ("bool", bool) else raw
        return cls(**values)  # type: ignore[arg-type]
