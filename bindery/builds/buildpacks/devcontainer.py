"""Repositories set up for Codespaces / dev containers (``.devcontainer/devcontainer.json``).

A devcontainer.json describes a development environment; bindery builds the nearest Binder
environment from the parts that map onto what this service can reach, and lists the rest in the
notice. It is read when the repository has no Binder configuration of its own (requirements.txt,
environment.yml, ...: those win, as they describe the Binder environment).

- ``image``: from a registry this service may pull from (its own, or one with a mirror:
  registry_mirrors) it is the base the environment is built FROM (it must be Jupyter-ready, as a
  Binder Dockerfile's base is); from elsewhere it is replaced by this service's base image, the
  Python of its tag (``python:3.11``, ``...python:1-3.12``) picked as runtime.txt would;
- ``build.dockerfile`` (with ``build.context``): built as a Binder Dockerfile (repo2docker's own
  Docker buildpack), so it starts FROM an image this service has or mirrors;
- ``features``: Python (its ``version``) and Node (Debian's nodejs and npm) are mapped; others are
  ignored and listed;
- ``onCreateCommand``, ``updateContentCommand``, ``postCreateCommand``: run, in that order, as
  build steps after the repository is copied (as postBuild is); ``postStartCommand`` and
  ``postAttachCommand`` are not run;
- editor ``customizations`` and every other property are ignored and listed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from functools import cached_property

from repo2docker.buildpacks import DockerBuildPack

from bindery.builds.buildpacks.base import MirrorBuildPack, guarded
from bindery.builds.buildpacks.build_notice import NOTICE_LABEL, label_value
from bindery.builds.buildpacks.errors import BuildpackError

LOCATIONS = (".devcontainer/devcontainer.json", ".devcontainer.json")
BINDER_FILES = ("binder", ".binder", "requirements.txt", "environment.yml", "Pipfile",
                "Pipfile.lock", "setup.py", "pyproject.toml", "install.R", "DESCRIPTION",
                "apt.txt", "postBuild", "runtime.txt", "uv.lock", "pylock.toml", "Dockerfile")
RUN_COMMANDS = ("onCreateCommand", "updateContentCommand", "postCreateCommand")
NOT_RUN = ("initializeCommand", "postStartCommand", "postAttachCommand")
USED = {"name", "image", "build", "features", *RUN_COMMANDS, "$schema"}
PYTHON_FEATURE = re.compile(r"(^|/)features/python(:|$)")
NODE_FEATURE = re.compile(r"(^|/)features/node(:|$)")
PYTHON_TAG = re.compile(r"python:(?:\d+-)?(\d+\.\d+)")


def image_registry(reference: str) -> str:
    """The registry an image reference is pulled from (docker.io when it names none)."""
    first, slash, _ = reference.partition("/")
    return first if slash and ("." in first or ":" in first or first == "localhost") \
        else "docker.io"


def find() -> str:
    return next((p for p in LOCATIONS if os.path.isfile(p)), "")


def read(path: str) -> dict:
    """devcontainer.json (JSON with comments and trailing commas)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    # comments (outside strings), then trailing commas
    text = re.sub(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/', lambda m: m.group(1) or "", text,
                  flags=re.S)
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BuildpackError(f"{path} is not valid JSON ({exc}). Fix {path}.") from None
    if not isinstance(data, dict):
        raise BuildpackError(f"{path} must hold a JSON object. Fix {path}.")
    return data


def dockerfile_of(config: dict, path: str) -> tuple[str, str]:
    """(Dockerfile, build context) a devcontainer.json builds from, relative to the repository,
    or ("", "")."""
    build = config.get("build") if isinstance(config.get("build"), dict) else {}
    name = build.get("dockerfile") or config.get("dockerFile")
    if not isinstance(name, str) or not name:
        return "", ""
    folder = os.path.dirname(path)
    context = build.get("context") or config.get("context") or "."
    resolved = os.path.normpath(os.path.join(folder, name))
    root = os.path.normpath(os.path.join(folder, str(context)))
    if resolved.startswith("..") or root.startswith(".."):
        raise BuildpackError(f"{path} points outside the repository ({name}, context "
                             f"{context}). Fix {path}.")
    return resolved, root


def command_line(value: object) -> list[str]:
    """A lifecycle command (a string, a list of arguments, or an object of either) as shell
    lines."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [shlex.join(str(v) for v in value)] if value else []
    if isinstance(value, dict):
        return [line for v in value.values() for line in command_line(v)]
    return []


def ignored(config: dict, path: str) -> list[str]:
    """Sentences for what a build here does not use."""
    out = []
    if config.get("customizations"):
        out.append(f"{path}: editor customizations ({', '.join(sorted(config['customizations']))})"
                   " ignored: Binder opens Jupyter")
    for key in NOT_RUN:
        if config.get(key):
            out.append(f"{path}: {key} not run (it runs when a dev container starts; Binder "
                       "starts Jupyter)")
    rest = sorted(k for k in config if k not in USED and k not in NOT_RUN and
                  k not in ("customizations", "context", "dockerFile"))
    if rest:
        out.append(f"{path}: ignored: {', '.join(rest)}")
    return out


class DevcontainerBuildPack(MirrorBuildPack):
    """image / features / lifecycle commands, on the mirror buildpacks' Dockerfile."""

    @cached_property
    def _config(self) -> tuple[str, dict]:
        path = find()
        return path, read(path) if path else {}

    def detect(self) -> bool:
        path, config = self._config
        return bool(path) and not dockerfile_of(config, path)[0] and \
            not any(os.path.exists(n) for n in BINDER_FILES)

    def _features(self) -> dict:
        features = self._config[1].get("features")
        return features if isinstance(features, dict) else {}

    def requested_python(self) -> tuple[str, str]:
        path, config = self._config
        for feature, options in self._features().items():
            if PYTHON_FEATURE.search(feature):
                version = str((options or {}).get("version", "")) if isinstance(options, dict) \
                    else ""
                if re.fullmatch(r"\d+(\.\d+)*", version):
                    return ".".join(version.split(".")[:2]), path
        match = PYTHON_TAG.search(str(config.get("image", "")))
        return (match.group(1), path) if match else ("", path)

    def _render(self, build_args: dict) -> str:
        path, config = self._config
        image = str(config.get("image") or "")
        allowed = [r for r in self.options.allowed_registries.split(",") if r]
        if image and image_registry(image) in allowed:
            self.base_image = image
            self.notice(f"{path}: built FROM its image {image} (it must be Jupyter-ready, as a "
                        "Binder Dockerfile's base is)")
        elif image:
            self.notice(f"{path}: its image {image} is from {image_registry(image)}, which this "
                        "service cannot pull from; built on this service's Python base instead")
        for feature in self._features():
            if not (PYTHON_FEATURE.search(feature) or NODE_FEATURE.search(feature)):
                self.notice(f"{path}: feature {feature} ignored (no equivalent here)")
        for sentence in ignored(config, path):
            self.notice(sentence)
        return super()._render(build_args)

    def apt_packages(self) -> list[str]:
        node = any(NODE_FEATURE.search(f) for f in self._features())
        return sorted({*super().apt_packages(), *(("nodejs", "npm") if node else ())})

    def assemble_scripts(self) -> list[str]:
        path, config = self._config
        return [guarded(f"{{ {line} ; }}", path)
                for key in RUN_COMMANDS for line in command_line(config.get(key))]


class DevcontainerDockerfileBuildPack(DockerBuildPack):
    """build.dockerfile: repo2docker's Docker buildpack on the devcontainer's Dockerfile."""

    def _where(self) -> tuple[str, str, str]:
        path = find()
        if not path or any(os.path.exists(n) for n in BINDER_FILES):
            return "", "", ""
        config = read(path)
        return (path, *dockerfile_of(config, path))

    def detect(self) -> bool:
        return bool(self._where()[1])

    def render(self, build_args: dict | None = None) -> str:
        path, dockerfile, _ = self._where()
        with open(dockerfile, encoding="utf-8", errors="replace") as f:
            return f.read()

    def get_labels(self) -> dict:
        path, _, _ = self._where()
        notices = ignored(read(path), path)
        return {**super().get_labels(), **({NOTICE_LABEL: label_value(notices)} if notices
                                           else {})}

    def build(self, client, image_spec, memory_limit, build_args, cache_from,  # noqa: ANN001
              extra_build_kwargs, platform=None):
        _, dockerfile, context = self._where()
        limits = {"memory": memory_limit, "memswap": memory_limit} if memory_limit else {}
        yield from client.build(
            path=os.path.abspath(context), dockerfile=os.path.relpath(dockerfile, context),
            tag=image_spec, buildargs=build_args, container_limits=limits,
            cache_from=cache_from, labels=self.get_labels(), platform=platform,
            **extra_build_kwargs)
