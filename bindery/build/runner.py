"""One build as the build queue runs it: pick the buildpacks (saying why), then run repo2docker."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bindery.build.buildpacks.options import BuildOptions
from bindery.build.mode import BuildpacksChooser
from bindery.build.queue import BuildJob
from bindery.build.repo2docker import repo2docker_argv, run_repo2docker
from bindery.events import Event
from bindery.settings import Settings
from bindery.stack import base_image


def build_options(settings: Settings, mode: str) -> BuildOptions:
    return BuildOptions(
        mode=mode,
        base_image=base_image.image_name(settings),
        base_suite=base_image.SUITE,
        python_version=base_image.PYTHON_VERSION,
        python_suites=",".join(f"{v}={suite}" for v, suite in settings.python_suites.items()),
        pypi_index_url=settings.pypi_index_url,
        installer=settings.python_installer,
        runtime_strict=settings.runtime_strict,
        environment_yml=settings.environment_yml,
    )


async def run_build(settings: Settings, chooser: BuildpacksChooser, job: BuildJob,
                    build_args: dict[str, str]) -> AsyncIterator[Event]:
    """Every event of one build; raises LaunchError when it fails (see run_repo2docker)."""
    choice = await chooser.choose()
    yield Event(phase="building", message=f"Buildpacks: {choice.mode} ({choice.reason})\n")
    argv = repo2docker_argv(settings.repo2docker_command, job.source, job.commit, job.image,
                            settings.build_memory_limit, build_args)
    env = build_options(settings, choice.mode).to_environ()
    async for event in run_repo2docker(argv, settings.build_socket, settings.build_timeout, env,
                                     job.git_config):
        yield event
