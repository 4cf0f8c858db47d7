"""environment.yml repositories when no conda channel can be reached (mirror mode).

By default the build fails at once with a message saying why and what to use instead. With the
setting ``environment_yml = "translate"`` bindery installs, from PyPI, the ``pip:`` section and
every conda package that exists on the index under the same name (conda version pins ``=1.2``
become ``==1.2.*``), and lists every package it could not translate in the build log.
"""

from __future__ import annotations

import os
import re
import ssl
import urllib.error
import urllib.request

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bindery.builds.buildpacks.base import MirrorBuildPack
from bindery.builds.buildpacks.errors import BuildpackError

CONDA_SPEC = re.compile(r"\s*([A-Za-z0-9_.\-]+)\s*(?:(==?|>=|<=|>|<|!=)\s*([^=\s]+))?(?:[=\s].*)?")
NOT_ON_PYPI = {"python", "pip"}  # handled otherwise (the image's Python, the installer)
INDEX_TIMEOUT = 10.0


def index_has(index_url: str, name: str, timeout: float = INDEX_TIMEOUT) -> bool:
    """Does the PyPI index (simple API) have a project `name`? Host's CA store, bounded."""
    normal = re.sub(r"[-_.]+", "-", name).lower()
    request = urllib.request.Request(f"{index_url.rstrip('/')}/{normal}/", method="GET",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout,
                                    context=ssl.create_default_context()) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return False
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise BuildpackError(f"the package index {index_url} did not answer ({exc}); "
                             "please try again later") from None


def conda_to_pip(spec: str) -> tuple[str, str]:
    """(name, pip requirement) for a conda spec such as "numpy=1.26", "scipy>=1.10", "pandas"."""
    match = CONDA_SPEC.fullmatch(spec)
    if match is None:
        return spec, ""
    name, op, version = match.groups()
    if not op:
        return name, name
    if op == "=":  # conda's fuzzy pin: 1.26 means 1.26.*
        return name, f"{name}=={version}" if version.endswith("*") else f"{name}=={version}.*"
    return name, f"{name}{op}{version}"


class EnvironmentBuildPack(MirrorBuildPack):
    def detect(self) -> bool:
        return os.path.exists(self.binder_path("environment.yml"))

    def requested_python(self) -> tuple[str, str]:
        """runtime.txt's Python if it names one, else environment.yml's `python=X.Y`."""
        requested, source = super().requested_python()
        if requested:
            return requested, source
        for dep in self._environment().get("dependencies") or []:
            name, _ = conda_to_pip(str(dep))
            if not isinstance(dep, dict) and name.lower() == "python":
                version = str(dep).partition("=")[2].lstrip("=").split("=")[0].rstrip(".*")
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

    def _translation(self) -> tuple[list[str], list[str]]:
        """(pip requirements, untranslated conda specs)."""
        reqs: list[str] = []
        untranslated: list[str] = []
        for dep in self._environment().get("dependencies") or []:
            if isinstance(dep, dict):
                reqs += [str(p) for p in dep.get("pip") or [] if isinstance(p, (str, int, float))]
                continue
            name, requirement = conda_to_pip(str(dep))
            if name.lower() in NOT_ON_PYPI:  # python: see requested_python
                continue
            if requirement and index_has(self.options.pypi_index_url, name):
                reqs.append(requirement)
            else:
                untranslated.append(str(dep))
        return reqs, untranslated

    def dependency_scripts(self) -> list[str]:
        path = self.binder_path("environment.yml")
        if self.options.environment_yml != "translate":
            raise BuildpackError(
                f"This repository describes its environment with {path}, which needs a conda "
                "channel (conda-forge), and this service cannot reach one. Put your packages in a "
                "requirements.txt (their PyPI names, e.g. numpy==1.26.4) instead, or ask the "
                "service's operators to allow translating environment.yml to PyPI packages.")
        reqs, untranslated = self._translation()
        self.say(f"{path}: no conda channel here; installing from PyPI instead: "
                 f"{', '.join(reqs) or 'nothing'}")
        if untranslated:
            self.say(f"WARNING: {path}: these conda packages have no same-name package on PyPI "
                     f"and were NOT installed: {', '.join(untranslated)}. Use a requirements.txt "
                     "to choose PyPI packages for them.")
        return [self.install(reqs, path)] if reqs else []
