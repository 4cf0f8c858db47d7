"""The base of bindery's mirror buildpacks: a Dockerfile FROM bindery's Jupyter-ready base image.

repo2docker drives a buildpack: it picks the first whose ``detect()`` is true (in the repository's
folder), calls ``render()`` for the Dockerfile and ``build()`` to send it with the repository to the
engine. This base renders bindery's own Dockerfile; repo2docker's ``BuildPack.build`` (kept as is)
packs the repository under ``src/`` next to it.

The layers are ordered so a commit that changes only notebooks rebuilds in seconds:

    FROM base (Python, Jupyter, uv, user jovyan)  →  apt.txt packages (root)
    → COPY the dependency files alone → install the dependencies (uv)   ← cached while unchanged
    → COPY the whole repository → install the repository itself (setup.py / pyproject.toml)
    → postBuild → start (entrypoint)

Each step that can fail because of the repository prints a ``[bindery] ...`` line naming its file,
which bindery/builds/repo2docker_run.py's KNOWN_CAUSES turn into a message saying what to change.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
from functools import cached_property

import jinja2
from repo2docker.buildpacks.base import BuildPack
from repo2docker.utils import R2dState

from bindery.builds.buildpacks.build_notice import NOTICE_LABEL, label_value
from bindery.builds.buildpacks.classic_jupyter import scan
from bindery.builds.buildpacks.errors import BuildpackError
from bindery.builds.buildpacks.options import BuildOptions
from bindery.builds.buildpacks.pinned_sets import nearest_installable
from bindery.builds.buildpacks.runtime import (
    PythonChoice,
    choose_python,
    read_runtime,
    runtime_python,
)

HOME = "/home/jovyan"  # the base image's user and REPO_DIR
KERNEL = "/opt/kernel"  # the kernel environment of a Python other than the base image's
UID = "1000"
CLASSIC_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "classic_jupyter.py")
CLASSIC_DIR = "/opt/bindery/classic"  # its `jupyter`, first on PATH while postBuild runs
APT_NAME = re.compile(r"[a-z0-9][a-z0-9.+\-]*(:[a-z0-9]+)?")

TEMPLATE = r"""FROM {{ base_image }}
USER root
ENV DEBIAN_FRONTEND=noninteractive
{% if apt_packages -%}
RUN {{ apt_install }}
{% endif -%}
{% if kernel_root -%}
RUN {{ kernel_root }}
{% endif -%}
{% for command in root_scripts -%}
RUN {{ command }}
{% endfor -%}
ENV REPO_DIR={{ home }} \
    UV_DEFAULT_INDEX={{ index_url }} \
    PIP_INDEX_URL={{ index_url }} \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_NO_PROGRESS=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR {{ home }}
USER {{ uid }}
{% if kernel_user -%}
ENV KERNEL_PYTHON_PREFIX={{ kernel }} PATH=${PATH}:{{ kernel }}/bin
RUN {{ kernel_user }}
{% endif -%}
{% for path in dependency_files -%}
COPY --chown={{ uid }}:{{ uid }} src/{{ path }} {{ home }}/{{ path }}
{% endfor -%}
{% for command in dependency_scripts -%}
RUN {{ command }}
{% endfor -%}
COPY --chown={{ uid }}:{{ uid }} src/ {{ home }}/
{% for command in assemble_scripts -%}
RUN {{ command }}
{% endfor -%}
{% if labels -%}
LABEL {% for key, value in labels %}{{ key }}={{ value }} {% endfor %}
{% endif -%}
{% for src, dst in build_script_files -%}
COPY --chown={{ uid }}:{{ uid }} {{ src }} {{ dst }}
{% endfor -%}
{% for command in pre_post_build -%}
RUN {{ command }}
{% endfor -%}
{% if post_build -%}
RUN {{ post_build }}
{% endif -%}
{% if start -%}
COPY /repo2docker-entrypoint /usr/local/bin/repo2docker-entrypoint
ENV R2D_ENTRYPOINT={{ home }}/{{ start }}
RUN chmod +x {{ start }}
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "python3", "/usr/local/bin/repo2docker-entrypoint"]
CMD ["jupyter", "notebook", "--ip", "0.0.0.0"]
{% endif -%}
{% if notice_label -%}
LABEL {{ notice_key }}={{ notice_label }}
{% endif -%}
{% if appendix -%}
{{ appendix }}
{% endif -%}
"""


def guarded(command: str, what: str) -> str:
    """`command` as a RUN line that names `what` (a file) when it starts and when it fails.

    The failure line is echoed in two words so the RUN line itself (which podman prints) never
    reads as a failure.
    """
    return (f"echo '[bindery] installing the packages listed in {what}' && {{ {command} ; }} "
            f"|| {{ echo '[bindery] installing the packages listed in {what}' 'failed'; exit 1; }}")


class MirrorBuildPack(BuildPack):
    """A buildpack that needs only a Debian mirror and a PyPI index.

    A subclass must:
      - say in ``detect()`` (run in the repository's folder) whether the repository is its kind;
      - list in ``dependency_files()`` the repository files its dependencies are read from, which
        are copied alone, before the rest of the repository, so their install layer stays cached;
      - return in ``dependency_scripts()`` the shell lines (run as jovyan in the venv) that install
        those dependencies, each made with ``self.install(...)`` so a failure names its file;
      - return in ``assemble_scripts()`` what needs the whole repository (installing it);
      - raise ``BuildpackError`` with a person's message for a repository it cannot build.
    apt.txt, postBuild, start, runtime.txt and the binder/ or .binder/ folder are handled here, for
    every kind, with repo2docker's meaning.
    """

    options: BuildOptions = BuildOptions()  # bound per build by buildpacks.mirror_buildpacks()

    def __init__(self, base_image: str) -> None:
        super().__init__(base_image)
        self.log = logging.getLogger("repo2docker")
        self._rendered: str | None = None  # repo2docker renders twice (log, build); say things once
        self.notices: list[str] = []  # what this build changes from what the repository asks

    # -- for subclasses ------------------------------------------------------------------------
    def detect(self) -> bool:
        return True  # no configuration at all: Jupyter only

    def dependency_files(self) -> list[str]:
        return []

    def dependency_scripts(self) -> list[str]:
        return []

    def assemble_scripts(self) -> list[str]:
        return []

    def root_scripts(self) -> list[str]:
        """RUN lines as root after apt.txt's packages (e.g. Debian's R)."""
        return []

    # -- shared --------------------------------------------------------------------------------
    def say(self, message: str) -> None:
        """A line in the build log (the person sees it on the launch page)."""
        self.log.info(message.rstrip("\n") + "\n", extra={"phase": R2dState.BUILDING})

    def notice(self, sentence: str) -> None:
        """Tell the person about a change from what the repository asks for: in the build log now,
        and in the image's notice label (the launch page and the ``ready`` event show it)."""
        if sentence not in self.notices:
            self.notices.append(sentence)
            self.say(f"[bindery] notice: {sentence}")

    def install(self, args: list[str], what: str) -> str:
        """A guarded RUN line installing `args` (pip/uv arguments) into the image's venv."""
        quoted = " ".join(shlex.quote(a) for a in args)
        kernel = bool(self.python.suite)  # install where the kernel runs
        if self.options.installer == "pip":
            pip = f"{KERNEL}/bin/python -m pip" if kernel else "pip"
            return guarded(f"{pip} install --no-cache-dir {quoted}", what)
        target = f"--python {KERNEL}/bin/python " if kernel else ""
        return guarded(f"uv pip install {target}{quoted}", what)

    def installable(self, requirements: list[str], source: str) -> list[str]:
        """Install arguments for `requirements` (pins read from `source`): as pinned when they
        install on this image's Python, else the nearest set that does, every change in the
        notice (bindery/builds/buildpacks/pinned_sets.py); runtime_strict refuses instead."""
        found = nearest_installable(requirements, self.python.version,
                                    self.options.pypi_index_url, self.options.runtime_strict,
                                    source)
        if found.explanation:
            self.say(f"[bindery] {source}: as pinned, uv finds no solution on Python "
                     f"{self.python.version}:\n{found.explanation}")
        for sentence in found.notices:
            self.notice(sentence)
        flags = [arg for name in found.only_binary for arg in ("--only-binary", name)]
        return [*found.requirements, *flags]

    def requested_python(self) -> tuple[str, str]:
        """(version asked for or "", the file that asks) — runtime.txt, as in repo2docker."""
        source = self.binder_path("runtime.txt")
        return runtime_python(read_runtime(source), source), source

    @cached_property
    def python(self) -> PythonChoice:
        requested, source = self.requested_python()
        return choose_python(requested, self.options.python_version, self.options.suites,
                             self.options.runtime_strict, source)

    def kernel_steps(self) -> tuple[str, str]:
        """(root, user) RUN lines giving a Python from another Debian suite a kernel environment.

        The suite's list is removed again afterwards, so apt.txt packages stay the base suite's.
        """
        suite, version = self.python.suite, self.python.version
        if not suite:
            return "", ""
        source = self.requested_python()[1]
        root = guarded(
            f"sed 's/ {self.options.base_suite} / {suite} /' /etc/apt/sources.list > /etc/apt/sources.list.d/"
            f"{suite}.list && apt-get -qq update && apt-get install --yes --no-install-recommends "
            f"-t {suite} python{version} && rm /etc/apt/sources.list.d/{suite}.list && "
            f"apt-get -qq clean && rm -rf /var/lib/apt/lists/* && install -d -o {UID} -g {UID} "
            f"{KERNEL}", source)
        user = guarded(
            f"uv venv --seed --python /usr/bin/python{version} {KERNEL} && uv pip install "
            f"--python {KERNEL}/bin/python ipykernel && {KERNEL}/bin/python -m ipykernel install "
            f"--prefix /opt/venv --name python3 --display-name 'Python {version}'",
            source)
        return root, user

    def apt_packages(self) -> list[str]:
        path = self.binder_path("apt.txt")
        if not os.path.exists(path):
            return []
        packages = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                name = line.partition("#")[0].strip()
                if not name:
                    continue
                if not APT_NAME.fullmatch(name):
                    raise BuildpackError(f"{path} line {number}: '{name[:80]}' is not a Debian "
                                         f"package name (one name per line). Fix {path}.")
                packages.append(name)
        return sorted(set(packages))

    def classic_commands(self) -> list[str]:
        """What postBuild's classic Jupyter extension commands become (classic_jupyter.py)."""
        path = self.binder_path("postBuild")
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8", errors="replace") as f:
            return scan(f.read())

    def get_build_script_files(self) -> dict[str, str]:
        """Files repo2docker adds to the build context: the classic-command `jupyter` wrapper
        when postBuild needs it."""
        return {CLASSIC_SOURCE: f"{CLASSIC_DIR}/jupyter"} if self.classic_commands() else {}

    def post_build(self) -> tuple[list[str], str]:
        """(RUN lines before postBuild, the postBuild RUN line)."""
        path = self.binder_path("postBuild")
        if not os.path.exists(path):
            return [], ""
        before: list[str] = []
        path_prefix = ""
        classic = self.classic_commands()
        if classic:
            for sentence in classic:
                self.notice(f"{path}: {sentence}")
            path_prefix = f"chmod 755 {CLASSIC_DIR}/jupyter && PATH={CLASSIC_DIR}:$PATH "
            if any("nbclassic-extension" in sentence for sentence in classic):
                self.notice(f"{path} sets up classic notebook extensions: the classic notebook UI "
                            "(nbclassic) was installed for them; open it at /nbclassic")
                before.append(guarded("uv pip install nbclassic", path))
        return before, (f"chmod +x {path} && {path_prefix}./{path} || {{ status=$?; echo "
                        f"'[bindery] {path} exited with status' $status; exit 1; }}")

    def start_script(self) -> str:
        path = self.binder_path("start")
        return path if os.path.exists(path) else ""

    def render(self, build_args: dict | None = None) -> str:
        if self._rendered is None:
            self._rendered = self._render(build_args or {})
        return self._rendered

    def _render(self, build_args: dict) -> str:
        if str(build_args.get("NB_UID", UID)) != UID:
            raise BuildpackError(f"mirror builds run as uid {UID} (the base image's jovyan)")
        if self.python.warning:
            self.notice(self.python.warning.removeprefix("WARNING: "))
        apt = self.apt_packages()
        apt_file = self.binder_path("apt.txt")
        apt_install = guarded(
            "apt-get -qq update && apt-get install --yes --no-install-recommends "
            + " ".join(apt) + " && apt-get -qq clean && rm -rf /var/lib/apt/lists/*", apt_file)
        kernel_root, kernel_user = self.kernel_steps()
        parts = dict(
            root_scripts=self.root_scripts(),
            dependency_files=self.dependency_files(),
            dependency_scripts=self.dependency_scripts(),
            assemble_scripts=self.assemble_scripts(),
            start=self.start_script(),
        )  # computed before the notice label: each may add to the notice
        parts["pre_post_build"], parts["post_build"] = self.post_build()
        parts["build_script_files"] = [(self.generate_build_context_filename(src)[0], dst)
                                       for src, dst in self.get_build_script_files().items()]
        return jinja2.Template(TEMPLATE).render(
            base_image=self.base_image, home=HOME, uid=UID,
            index_url=shlex.quote(self.options.pypi_index_url),
            apt_packages=apt, apt_install=apt_install,
            kernel=KERNEL, kernel_root=kernel_root, kernel_user=kernel_user,
            labels=[(k, json.dumps(str(v))) for k, v in sorted(self.get_labels().items())],
            notice_key=NOTICE_LABEL,
            notice_label=label_value(self.notices) if self.notices else "",
            appendix=self.appendix, **parts,
        )
