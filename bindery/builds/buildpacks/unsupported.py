"""Repository kinds a mirror build cannot make (Julia, Nix): a clear refusal, not a wrong image.

repo2docker builds these with Julia from julialang.org and Nix from nixos.org; neither is a Debian
mirror or a PyPI index, so here they fail at once, naming the file that asked for them. (R comes
from Debian: r_environment.py.)
"""

from __future__ import annotations

import os

from bindery.builds.buildpacks.base import MirrorBuildPack
from bindery.builds.buildpacks.errors import BuildpackError
from bindery.builds.buildpacks.runtime import read_runtime

# (file, what it asks for), in repo2docker's order of buildpacks
KINDS = (
    ("Project.toml", "Julia"),
    ("REQUIRE", "Julia"),
    ("default.nix", "Nix"),
)


class UnsupportedBuildPack(MirrorBuildPack):
    def _asked(self) -> tuple[str, str] | None:
        runtime = self.binder_path("runtime.txt")
        line = read_runtime(runtime)
        if line and not line.startswith(("python-", "r-")):
            return runtime, line.split("-", 1)[0]
        for name, kind in KINDS:
            if os.path.exists(self.binder_path(name)):
                return self.binder_path(name), kind
        return None

    def detect(self) -> bool:
        return self._asked() is not None

    def _render(self, build_args: dict) -> str:
        path, kind = self._asked() or ("", "")
        raise BuildpackError(
            f"{path} asks for a {kind} environment, which this service cannot build: it reaches "
            "only a Debian mirror and a Python package index. Describe the environment with "
            "requirements.txt (and apt.txt for Debian packages), or add a Dockerfile.")
