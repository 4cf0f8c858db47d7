"""Build settings other than the session stack's: real builds on the stack's build engine, run the
way the build queue runs them (bindery.builds.runner), with the settings changed for one build."""

from __future__ import annotations

import pytest

from bindery.builds.buildpack_mode import BuildpacksChooser
from bindery.builds.queue import BuildJob
from bindery.builds.runner import engine_executor, run_build
from bindery.events import Event, LaunchError
from bindery.settings import Settings

pytestmark = pytest.mark.stack


async def build(settings: Settings, url: str, image: str) -> tuple[list[Event], LaunchError | None]:
    job = BuildJob(image=f"{settings.registry.host}/bindery/{image}:test", repo=url, commit=None,
                   source=url)
    events: list[Event] = []
    try:
        async for event in run_build(settings, BuildpacksChooser.from_settings(settings),
                                     engine_executor(settings), job, {}):
            events.append(event)
    except LaunchError as exc:
        return events, exc
    return events, None


async def test_standard_buildpacks_fail_here_saying_what_to_do(stack, git_server):
    _, url = git_server.create("standard", {"requirements.txt": "tabulate==0.9.0\n"})
    settings = stack.model_copy(update={"buildpacks": "standard"})
    events, error = await build(settings, url, "standard")
    assert events[0].message.startswith("Buildpacks: standard (the service's buildpacks setting")
    # repo2docker's own Python buildpack read requirements.txt (with chardet) and got as far as
    # pulling its base image from Docker Hub, which this machine cannot reach.
    assert error is not None
    message = error.event().message
    assert "the base image buildpack-deps:jammy could not be pulled" in message
    assert "'mirror' or 'auto'" in message


async def test_strict_runtime_fails_naming_runtime_txt(stack, git_server):
    _, url = git_server.create("strict", {"runtime.txt": "python-3.12\n"})
    settings = stack.model_copy(update={"buildpacks": "mirror", "runtime_strict": True})
    _, error = await build(settings, url, "strict")
    assert error is not None
    message = error.event().message
    assert "runtime.txt asks for Python 3.12" in message
    assert "Change runtime.txt to one of python-3.11, python-3.13" in message
