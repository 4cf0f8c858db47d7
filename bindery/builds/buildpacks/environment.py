"""environment.yml repositories when no conda channel can be reached (mirror mode).

By default (``environment_yml = "translate"``) bindery installs from the PyPI index the ``pip:``
section and every conda package that has a PyPI counterpart (its own name, or the PyPI name of a
common rename: bindery/builds/buildpacks/conda_specs.py), with conda's version pins as the nearest
PEP 440 specifiers; ``python=X.Y`` picks the nearest Python this service has. Every package left
out or changed is in the build's notice (the launch page, the ``ready`` event). With
``environment_yml = "refuse"`` the build fails at once, saying why and what to use instead.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bindery.builds.buildpacks.base import MirrorBuildPack
from bindery.builds.buildpacks.conda_specs import conda_name, translate
from bindery.builds.buildpacks.errors import BuildpackError
from bindery.builds.buildpacks.package_index import project_files

HANDLED = {"python", "pip"}  # handled otherwise (the image's Python, the installer)
INDEX_LOOKUPS = 8  # concurrent questions to the index


class EnvironmentBuildPack(MirrorBuildPack):
    def detect(self) -> bool:
        return os.path.exists(self.binder_path("environment.yml"))

    def requested_python(self) -> tuple[str, str]:
        """runtime.txt's Python if it names one, else environment.yml's `python=X.Y`."""
        requested, source = super().requested_python()
        if requested:
            return requested, source
        for dep in self._environment().get("dependencies") or []:
            if not isinstance(dep, dict) and conda_name(str(dep)) == "python":
                version = re.sub(r"^[\s\w.:\-]*?python\s*[=<>!~]*", "", str(dep).strip())
                version = re.split(r"[=,\s|<>]", version)[0].rstrip(".*")
                if version:
                    return ".".join(version.split(".")[:2]), self.binder_path("environment.yml")
        return "", source

    def _environment(self) -> dict:
        path = self.binder_path("environment.yml")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                data = YAML(typ="safe").load(f)
        except YAMLError as exc:
            reason = str(exc)[:200]
            raise BuildpackError(f"{path} is not valid YAML ({reason}). Fix {path}.") from None
        return data if isinstance(data, dict) else {}

    def _translation(self) -> list[str]:
        """The pip requirements environment.yml stands for; every change said in the notice."""
        path = self.binder_path("environment.yml")
        pip: list[str] = []
        translated = []
        for dep in self._environment().get("dependencies") or []:
            if isinstance(dep, dict):
                pip += [str(p) for p in dep.get("pip") or [] if isinstance(p, (str, int, float))]
            elif conda_name(str(dep)) not in HANDLED:
                translated.append(translate(str(dep)))
        names = sorted({t.pypi for t in translated if t.pypi})
        with ThreadPoolExecutor(max_workers=INDEX_LOOKUPS) as pool:
            found = dict(zip(names, pool.map(
                lambda n: project_files(self.options.pypi_index_url, n) is not None, names), strict=True))
        reqs = []
        for t in translated:
            if not t.requirement:
                self.notice(f"{path}: '{t.conda}' left out: {t.change}")
            elif not found[t.pypi]:
                self.notice(f"{path}: '{t.conda}' left out: no package of that name on the "
                            "Python package index")
            else:
                reqs.append(t.requirement)
                if t.change:
                    self.notice(f"{path}: '{t.conda}' {t.change}")
        return reqs + pip

    def dependency_scripts(self) -> list[str]:
        path = self.binder_path("environment.yml")
        if self.options.environment_yml != "translate":
            raise BuildpackError(
                f"This repository describes its environment with {path}, which needs a conda "
                "channel (conda-forge), and this service cannot reach one. Put your packages in a "
                "requirements.txt (their PyPI names, e.g. numpy==1.26.4) instead, or ask the "
                "service's operators to allow translating environment.yml to PyPI packages.")
        reqs = self._translation()
        self.notice(f"{path}: no conda channel here, so its packages were installed from the "
                    f"Python package index instead: {', '.join(reqs) or 'none'}")
        return [self.install(self.installable(reqs, path), path)] if reqs else []
