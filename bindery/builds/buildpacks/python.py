"""requirements.txt, setup.py and pyproject.toml repositories (and those with no configuration).

As in repo2docker: requirements.txt is installed from the file alone unless it refers to the
repository itself (``-e .``, a local path), then after the whole repository is copied; a setup.py
at the top (and no binder folder) is installed as a package after that. bindery also installs a
top-level pyproject.toml project, whose static ``[project] dependencies`` are installed first from
that file alone, so a commit that changes only notebooks does not reinstall them.
"""

from __future__ import annotations

import os
import tomllib

from repo2docker.utils import is_local_pip_requirement, open_guess_encoding

from bindery.builds.buildpacks.base import MirrorBuildPack
from bindery.builds.buildpacks.errors import BuildpackError


class PythonBuildPack(MirrorBuildPack):
    def detect(self) -> bool:
        if os.path.exists(self.binder_path("runtime.txt")):
            return True  # runtime.txt says python-X.Y (other runtimes are refused earlier)
        return (os.path.exists(self.binder_path("requirements.txt"))
                or self._package_file() is not None)

    def _requirements(self) -> str | None:
        path = self.binder_path("requirements.txt")
        return path if os.path.exists(path) else None

    def _package_file(self) -> str | None:
        """setup.py or pyproject.toml at the top, used only without a binder folder."""
        if self.binder_dir:
            return None
        for name in ("setup.py", "pyproject.toml"):
            if os.path.exists(name):
                return name
        return None

    def _requirements_are_local(self) -> bool:
        """Does requirements.txt refer to the repository itself (so needs all of it)?"""
        path = self._requirements()
        if path is None:
            return False
        # repo2docker's own reader (guesses the file's encoding), so the meaning is the same.
        with open_guess_encoding(path) as f:
            return any(is_local_pip_requirement(line) for line in f)

    def _static_dependencies(self) -> list[str]:
        """pyproject.toml's [project] dependencies, when they are declared statically."""
        if self._package_file() != "pyproject.toml":
            return []
        try:
            with open("pyproject.toml", "rb") as f:
                project = tomllib.load(f).get("project", {})
        except tomllib.TOMLDecodeError as exc:
            raise BuildpackError(f"pyproject.toml is not valid TOML ({exc}). Fix pyproject.toml.")
        if "dependencies" in project.get("dynamic", []):
            return []
        deps = project.get("dependencies", [])
        return [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []

    def dependency_files(self) -> list[str]:
        files = []
        if self._requirements() and not self._requirements_are_local():
            files.append(self._requirements())
        return files

    def _hashed(self) -> list[str]:
        """--require-hashes when requirements.txt pins hashes (pip's meaning: then every
        requirement must have one and every download must match)."""
        with open_guess_encoding(self._requirements()) as f:
            return ["--require-hashes"] if "--hash" in f.read() else []

    def dependency_scripts(self) -> list[str]:
        scripts = []
        requirements = self._requirements()
        if requirements and not self._requirements_are_local():
            scripts.append(self.install(["-r", requirements, *self._hashed()], requirements))
        static = self._static_dependencies()
        if static:
            scripts.append(self.install(static, "pyproject.toml"))
        return scripts

    def assemble_scripts(self) -> list[str]:
        scripts = []
        requirements = self._requirements()
        if requirements and self._requirements_are_local():
            scripts.append(self.install(["-r", requirements], requirements))
        package = self._package_file()
        if package:
            scripts.append(self.install(["."], package))
        return scripts
