"""Lockfiles people write today: uv.lock and pylock.toml (PEP 751), installed exactly with uv.

- ``pylock.toml`` (or ``pylock.<name>.toml``): ``uv pip install -r pylock.toml`` — the locked files,
  checked against their hashes;
- ``uv.lock`` with its ``pyproject.toml``: the lock exported as hashed requirements
  (``uv export --frozen``, so the lock is never re-resolved) and installed with
  ``--require-hashes``; the project itself is installed afterwards, without dependencies, when it
  is a package (it has a ``[build-system]``).
Both files are copied alone before the rest of the repository, so a notebook-only commit reuses
the install layer. A conda lock (``conda-lock.yml``, ``*.conda-lock.yml``) or a pixi project
(``pixi.toml``) needs a conda channel: alone, it is refused with a message saying what to use
instead; beside a file this service reads (environment.yml, requirements.txt, ...), it is ignored
and the notice says so.
"""

from __future__ import annotations

import glob
import os
import tomllib

from bindery.builds.buildpacks.base import KERNEL, MirrorBuildPack, guarded
from bindery.builds.buildpacks.errors import BuildpackError

EXPORTED = "/tmp/bindery-uv-lock.txt"
CONDA_LOCKS = ("pixi.toml", "pixi.lock", "conda-lock.yml", "*.conda-lock.yml")
READABLE = ("environment.yml", "requirements.txt", "Pipfile", "Pipfile.lock", "setup.py",
            "install.R", "uv.lock", "pylock.toml")


class LockfileBuildPack(MirrorBuildPack):
    def _pylock(self) -> str:
        for name in ["pylock.toml", *sorted(glob.glob(self.binder_path("pylock.*.toml")))]:
            path = name if os.path.sep in name else self.binder_path(name)
            if os.path.exists(path):
                return path
        return ""

    def _uv_lock(self) -> str:
        path = self.binder_path("uv.lock")
        return path if os.path.exists(path) and os.path.exists(self._pyproject()) else ""

    def _pyproject(self) -> str:
        return self.binder_path("pyproject.toml")

    def _conda_locks(self) -> list[str]:
        return [p for pattern in CONDA_LOCKS for p in sorted(glob.glob(self.binder_path(pattern)))]

    def detect(self) -> bool:
        if self._pylock() or self._uv_lock():
            return True
        # a conda lock alone: refused in render (another file present: that file's buildpack)
        return bool(self._conda_locks()) and not any(
            os.path.exists(self.binder_path(n)) for n in READABLE)

    def _is_package(self) -> bool:
        try:
            with open(self._pyproject(), "rb") as f:
                return "build-system" in tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise BuildpackError(f"{self._pyproject()} could not be read ({exc}). Fix "
                                 f"{self._pyproject()}.") from None

    def _refuse_conda_lock(self) -> None:
        if not (self._pylock() or self._uv_lock()):
            found = self._conda_locks()[0]
            raise BuildpackError(
                f"{found} describes a conda environment, which needs a conda channel "
                "(conda-forge), and this service cannot reach one. Add an environment.yml (this "
                "service installs its packages from the Python package index) or a "
                "requirements.txt, uv.lock or pylock.toml.")

    def dependency_files(self) -> list[str]:
        self._refuse_conda_lock()
        for found in self._conda_locks():
            self.notice(f"{found} ignored: it needs a conda channel, which this service cannot "
                        "reach")
        if self._pylock():
            return [self._pylock()]
        return [self._uv_lock(), self._pyproject()]

    def dependency_scripts(self) -> list[str]:
        if self._pylock():
            return [guarded(f"uv pip install {self._target()}-r {self._pylock()}", self._pylock())]
        lock = self._uv_lock()
        folder = os.path.dirname(lock) or "."
        return [guarded(
            f"uv export --frozen --no-emit-project --format requirements.txt --project {folder} "
            f"-o {EXPORTED} --quiet && uv pip install {self._target()}--require-hashes "
            f"-r {EXPORTED} && rm {EXPORTED}", lock)]

    def assemble_scripts(self) -> list[str]:
        if self._uv_lock() and self._is_package():
            folder = os.path.dirname(self._uv_lock()) or "."
            return [guarded(f"uv pip install {self._target()}--no-deps {folder}",
                            self._pyproject())]
        return []

    def _target(self) -> str:
        """uv's --python for a kernel of another Python (see base.py), else nothing."""
        return f"--python {KERNEL}/bin/python " if self.python.suite else ""
