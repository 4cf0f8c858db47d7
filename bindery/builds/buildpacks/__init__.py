"""bindery's repo2docker buildpacks ("mirror" mode), and how repo2docker is configured to use them.

repo2docker loads bindery/builds/repo2docker_config.py, which calls ``configure(c, os.environ)``.
In ``mirror`` mode the buildpack list becomes bindery's, in repo2docker's order of precedence, and
the base image bindery's Jupyter-ready one; in ``standard`` mode repo2docker keeps its own.
A Dockerfile repository builds with repo2docker's own Docker buildpack in both modes.
"""

from __future__ import annotations

from collections.abc import Mapping

from bindery.builds.buildpacks.base import MirrorBuildPack
from bindery.builds.buildpacks.devcontainer import (DevcontainerBuildPack,
                                                    DevcontainerDockerfileBuildPack)
from bindery.builds.buildpacks.environment import EnvironmentBuildPack
from bindery.builds.buildpacks.lockfiles import LockfileBuildPack
from bindery.builds.buildpacks.options import BuildOptions
from bindery.builds.buildpacks.pipfile import PipfileBuildPack
from bindery.builds.buildpacks.python import PythonBuildPack
from bindery.builds.buildpacks.r_environment import RBuildPack
from bindery.builds.buildpacks.unsupported import UnsupportedBuildPack

MIRROR_ORDER: tuple[type[MirrorBuildPack], ...] = (
    UnsupportedBuildPack, RBuildPack, LockfileBuildPack, EnvironmentBuildPack, PipfileBuildPack,
    DevcontainerBuildPack, PythonBuildPack)

__all__ = ["BuildOptions", "MirrorBuildPack", "configure", "mirror_buildpacks"]


def mirror_buildpacks(options: BuildOptions) -> list[type[MirrorBuildPack]]:
    """bindery's buildpack classes with `options` bound (repo2docker instantiates them itself)."""
    # "Mirror..." so the build log ("Using MirrorPythonBuildPack builder") says whose buildpack it is
    return [type(f"Mirror{bp.__name__}", (bp,), {"options": options}) for bp in MIRROR_ORDER]


def configure(c, environ: Mapping[str, str]) -> None:  # noqa: ANN001 (traitlets' Config)
    options = BuildOptions.from_environ(environ)
    if options.mode != "mirror":
        return  # standard: repo2docker's own buildpacks and base image
    from repo2docker.buildpacks import DockerBuildPack

    bound = mirror_buildpacks(options)
    c.Repo2Docker.buildpacks = [DockerBuildPack, DevcontainerDockerfileBuildPack, *bound]
    c.Repo2Docker.default_buildpack = bound[-1]  # no configuration: Jupyter only
    c.Repo2Docker.base_image = options.base_image
