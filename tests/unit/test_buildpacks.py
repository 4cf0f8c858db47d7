"""The mirror buildpacks' decisions, without an engine: what they render, parse and refuse."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from bindery.builds.buildpacks import BuildOptions, mirror_buildpacks
from bindery.builds.buildpacks.build_notice import NOTICE_LABEL, read_label
from bindery.builds.buildpacks.conda_specs import translate
from bindery.builds.buildpacks.errors import BuildpackError
from bindery.builds.buildpacks.pipfile import lock_requirements, pipfile_requirements
from bindery.builds.buildpacks.runtime import PythonChoice, choose_python, runtime_python
from bindery.builds.buildpack_mode import BuildpacksChooser
from bindery.builds.repo2docker_run import known_cause


def pick(folder: Path, files: dict[str, str], **options: object):
    """The buildpack repo2docker would pick for `files`, and its Dockerfile."""
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    old = os.getcwd()
    os.chdir(folder)
    try:
        packs = mirror_buildpacks(BuildOptions(base_image="base:1", **options))  # type: ignore[arg-type]
        bp = next((p("base:1") for p in packs if p("base:1").detect()), None) or packs[-1]("base:1")
        return type(bp).__name__, bp.render({"NB_UID": "1000"})
    finally:
        os.chdir(old)


def test_requirements_are_installed_from_the_file_alone_before_the_repository(tmp_path):
    name, dockerfile = pick(tmp_path, {"requirements.txt": "tabulate\n"})
    assert name == "MirrorPythonBuildPack"
    lines = dockerfile.splitlines()
    copy_deps = lines.index("COPY --chown=1000:1000 src/requirements.txt "
                            "/home/jovyan/requirements.txt")
    install = next(i for i, line in enumerate(lines) if "uv pip install -r requirements.txt" in line)
    copy_all = lines.index("COPY --chown=1000:1000 src/ /home/jovyan/")
    assert copy_deps < install < copy_all


def test_requirements_referring_to_the_repository_install_after_it(tmp_path):
    _, dockerfile = pick(tmp_path, {"requirements.txt": "-e .\n", "setup.py": "x"})
    lines = dockerfile.splitlines()
    copy_all = lines.index("COPY --chown=1000:1000 src/ /home/jovyan/")
    install = next(i for i, line in enumerate(lines) if "-r requirements.txt" in line)
    assert install > copy_all and "src/requirements.txt" not in dockerfile


def test_pip_installer_setting(tmp_path):
    _, dockerfile = pick(tmp_path, {"requirements.txt": "x\n"}, installer="pip")
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert "uv pip" not in dockerfile


def test_binder_folder_takes_precedence(tmp_path):
    _, dockerfile = pick(tmp_path, {"requirements.txt": "a\n", "setup.py": "x",
                                    "binder/requirements.txt": "b\n", "binder/postBuild": "x"})
    assert "-r binder/requirements.txt" in dockerfile
    assert "src/requirements.txt" not in dockerfile
    assert "install ." not in dockerfile  # setup.py is ignored with a binder folder, as in repo2docker
    assert "./binder/postBuild" in dockerfile


def test_pyproject_static_dependencies_come_before_the_repository(tmp_path):
    _, dockerfile = pick(tmp_path, {"pyproject.toml": "[project]\nname='p'\nversion='1'\n"
                                                      "dependencies=['tabulate>=0.9']\n"})
    lines = dockerfile.splitlines()
    copy_all = lines.index("COPY --chown=1000:1000 src/ /home/jovyan/")
    deps = next(i for i, line in enumerate(lines) if "'tabulate>=0.9'" in line)
    package = next(i for i, line in enumerate(lines) if "uv pip install ." in line)
    assert deps < copy_all < package


def test_apt_txt_is_validated(tmp_path):
    with pytest.raises(BuildpackError, match="apt.txt line 2"):
        pick(tmp_path, {"apt.txt": "jq\nrm -rf /; echo\n"})


def test_unsupported_kinds_are_refused_naming_the_file(tmp_path):
    with pytest.raises(BuildpackError, match="Project.toml asks for a Julia environment"):
        pick(tmp_path, {"Project.toml": "x", "requirements.txt": "a\n"})


def test_environment_yml_refused_when_the_operators_say_so(tmp_path):
    with pytest.raises(BuildpackError, match="cannot reach one. Put your packages in a requirements"):
        pick(tmp_path, {"environment.yml": "dependencies: [numpy]\n"}, environment_yml="refuse")


def notice_of(dockerfile: str) -> list[str]:
    """The notice label's sentences, as a launch reads them back from the image."""
    line = next((ln for ln in dockerfile.splitlines() if ln.startswith(f"LABEL {NOTICE_LABEL}=")),
                "")
    return read_label(line.partition("=")[2])


def test_environment_yml_translated_by_default_every_change_in_the_notice(tmp_path):
    """Against the real package index (its answers are what the translation is about)."""
    _, dockerfile = pick(tmp_path, {"environment.yml": (
        "channels: [conda-forge]\ndependencies:\n  - python=3.7\n  - pyyaml=6.0\n"
        "  - msgpack-python\n  - nodejs\n  - bindery-conda-only-xyz=1.0=h1234_0\n"
        "  - r-ggplot2\n  - pip\n  - pip:\n    - tabulate==0.9.0\n")})
    assert "uv pip install 'pyyaml==6.0.*' msgpack tabulate==0.9.0" in dockerfile
    notice = notice_of(dockerfile)
    text = "\n".join(notice)
    assert "environment.yml asks for Python 3.7" in text and "Python 3.11 instead" in text
    assert "'msgpack-python' installed as msgpack (its PyPI name)" in text
    assert "'nodejs' left out: not a Python package" in text
    assert "'bindery-conda-only-xyz=1.0=h1234_0' left out: no package of that name" in text
    assert "'r-ggplot2' left out: an R package" in text
    # the notice is the image's last instruction: a change to it rebuilds no layer
    assert dockerfile.rstrip().splitlines()[-1].startswith(f"LABEL {NOTICE_LABEL}=")


def test_no_notice_when_nothing_changes(tmp_path):
    _, dockerfile = pick(tmp_path, {"requirements.txt": "tabulate\n"})
    assert NOTICE_LABEL not in dockerfile


def test_notice_label_read_back_is_bounded():
    assert read_label("not base64!") == [] and read_label(None) == []
    assert read_label("WyJhIiwgMV0=") == ["a"]  # ["a", 1]: strings only


def test_start_sets_the_entrypoint(tmp_path):
    _, dockerfile = pick(tmp_path, {"start": "#!/bin/sh\nexec \"$@\"\n"})
    assert "ENV R2D_ENTRYPOINT=/home/jovyan/start" in dockerfile
    assert "repo2docker-entrypoint" in dockerfile


def test_runtime_python():
    assert runtime_python("python-3.11", "runtime.txt") == "3.11"
    assert runtime_python("python-3", "runtime.txt") == "3"
    with pytest.raises(BuildpackError, match="builds Python repositories only"):
        runtime_python("r-4.1-2022-01-01", "runtime.txt")
    suites = {"3.13": "trixie"}
    assert choose_python("3.11", "3.11", suites, True, "runtime.txt") == PythonChoice("3.11")
    assert choose_python("3", "3.11", suites, True, "runtime.txt") == PythonChoice("3.11")
    assert choose_python("3.13", "3.11", suites, True, "runtime.txt") == PythonChoice("3.13", "trixie")
    nearest = choose_python("3.14", "3.11", suites, False, "runtime.txt")
    assert (nearest.version, nearest.suite) == ("3.13", "trixie")
    assert "building with Python 3.13 instead" in nearest.warning
    tie = choose_python("3.12", "3.11", suites, False, "runtime.txt")  # the base's own on a tie
    assert (tie.version, tie.suite) == ("3.11", "") and "3.11 or 3.13" in tie.warning
    with pytest.raises(BuildpackError, match="Change runtime.txt to one of python-3.11, python-3.13"):
        choose_python("3.12", "3.11", suites, True, "runtime.txt")


def test_other_suites_python_gets_a_kernel_environment(tmp_path):
    _, dockerfile = pick(tmp_path, {"runtime.txt": "python-3.13\n", "requirements.txt": "a\n"})
    assert "apt-get install --yes --no-install-recommends -t trixie python3.13" in dockerfile
    assert "rm /etc/apt/sources.list.d/trixie.list" in dockerfile  # apt.txt stays bookworm's
    assert "uv pip install --python /opt/kernel/bin/python -r requirements.txt" in dockerfile
    assert "ipykernel install --prefix /opt/venv --name python3" in dockerfile


def test_conda_specs_to_pip():
    def requirement(spec: str) -> str:
        return translate(spec).requirement

    assert requirement("numpy=1.26") == "numpy==1.26.*"
    assert requirement("scipy>=1.10") == "scipy>=1.10"
    assert requirement("pandas") == "pandas"
    assert requirement("numpy=1.26=py311_0") == "numpy==1.26.*"
    assert requirement("conda-forge::pandas==1.0.3") == "pandas==1.0.3"
    assert requirement("matplotlib-base 3.1.*") == "matplotlib==3.1.*"
    assert requirement("xarray>=0.15,<0.17") == "xarray>=0.15,<0.17"
    assert requirement("absl-py=0.9.0=py37_0") == "absl-py==0.9.0.*"
    assert translate("absl-py=0.9.0=py37_0").change == "conda build 'py37_0' dropped"
    assert translate("py-opencv").pypi == "opencv-python-headless"
    assert translate("pytorch>=2").requirement == "torch>=2"
    assert translate("cudatoolkit=10.1").requirement == ""


def test_pipfile_parsing():
    reqs, local = pipfile_requirements({"packages": {"a": "*", "b": "==1", "c": {"version": ">2",
                                        "extras": ["x"]}, "me": {"path": ".", "editable": True}},
                                        "dev-packages": {"d": "*"}})
    assert reqs == ["a", "b==1", "c[x]>2", "d"] and local == ["."]
    pins, local = lock_requirements({"default": {"a": {"version": "==1.0", "markers":
                                                      "python_version >= '3'"}},
                                     "develop": {"b": {"version": "==2"}}})
    assert pins == ["a==1.0; python_version >= '3'", "b==2"] and local == []


def test_options_round_trip():
    options = BuildOptions(mode="mirror", base_image="b", runtime_strict=True, installer="pip")
    assert BuildOptions.from_environ(options.to_environ()) == options


def test_known_causes_name_the_file():
    log = ["STEP 8/12: RUN echo '[bindery] installing the packages listed in binder/requirements.txt'"
           " && { uv pip install -r binder/requirements.txt ; } || { echo '[bindery] installing the"
           " packages listed in binder/requirements.txt' 'failed'; exit 1; }",
           "[bindery] installing the packages listed in binder/requirements.txt",
           "  × No solution found when resolving dependencies:",
           "  ╰─▶ Because nopkg-xyz was not found in the package registry and you require",
           "[bindery] installing the packages listed in binder/requirements.txt failed"]
    assert known_cause(log) == ("the package nopkg-xyz does not exist on this service's Python "
                                "package index; fix its name in binder/requirements.txt")
    assert "postBuild exited with status 3" in known_cause(
        ["RUN chmod +x postBuild && ./postBuild || { status=$?; echo '[bindery] postBuild exited "
         "with status' $status; exit 1; }", "[bindery] postBuild exited with status 3"])
    # the RUN line alone (printed by every build) is not read as a failure
    assert known_cause(log[:1]) is None


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(401)  # a registry's answer without credentials: still reachable
        self.end_headers()

    def log_message(self, *args):
        pass


async def test_auto_probe_picks_and_caches():
    server = HTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/"
    up = f"http://127.0.0.1:{server.server_address[1]}/"
    now = [0.0]
    try:
        both = BuildpacksChooser("auto", up, up, 2, 300, clock=lambda: now[0])
        assert (await both.choose()).mode == "standard"
        one = BuildpacksChooser("auto", up, closed, 2, 300, clock=lambda: now[0])
        first = await one.choose()
        assert first.mode == "mirror" and "the conda channel" in first.reason
        one.targets["the conda channel"] = up  # it became reachable, but the answer is cached ...
        assert (await one.choose()) is first
        now[0] = 301  # ... until it expires
        assert (await one.choose()).mode == "standard"
        fixed = BuildpacksChooser("standard", closed, closed, 2, 300)
        assert (await fixed.choose()).reason == "the service's buildpacks setting is 'standard'"
        await asyncio.gather(*(one.choose() for _ in range(5)))  # concurrent callers share it
    finally:
        server.shutdown()


def test_repo2docker_reads_requirements_with_its_pinned_chardet(tmp_path):
    """The reader repo2docker uses for every requirements.txt works with the chardet installed
    next to it (chardet 7 broke it: module 'chardet' has no attribute 'universaldetector')."""
    from repo2docker.utils import open_guess_encoding

    path = tmp_path / "requirements.txt"
    path.write_bytes("# données\ntabulate==0.9.0\n".encode("latin-1"))
    with open_guess_encoding(str(path)) as f:
        assert f.read().splitlines()[1] == "tabulate==0.9.0"


CLASSIC_POSTBUILD = """#!/bin/bash
set -e
jupyter contrib nbextension install --user
jupyter nbextension enable --py widgetsnbextension --sys-prefix
jupyter serverextension enable --py jupyterlab --sys-prefix
jupyter labextension install @jupyter-widgets/jupyterlab-manager@2 @jupyterlab/toc bindery-nope-ext --no-build
jupyter lab build --minimize=False && echo built
jupyter kernelspec list
"""


def test_classic_extension_commands_in_postbuild_are_mapped_and_listed(tmp_path):
    _, dockerfile = pick(tmp_path, {"postBuild": CLASSIC_POSTBUILD})
    lines = dockerfile.splitlines()
    copy = next(i for i, ln in enumerate(lines) if ln.endswith(" /opt/bindery/classic/jupyter"))
    assert lines[copy].startswith("COPY --chown=1000:1000 build_script_files/")
    nbclassic = next(i for i, ln in enumerate(lines) if "uv pip install nbclassic" in ln)
    post = next(i for i, ln in enumerate(lines) if "./postBuild" in ln)
    assert copy < nbclassic < post
    assert "PATH=/opt/bindery/classic:$PATH ./postBuild" in lines[post]
    notice = "\n".join(notice_of(dockerfile))
    assert "'jupyter contrib nbextension install --user' skipped" in notice
    assert ("'jupyter serverextension enable --py jupyterlab --sys-prefix' run as 'jupyter server "
            "extension enable jupyterlab --sys-prefix'") in notice
    assert "run as 'jupyter nbclassic-extension enable --py widgetsnbextension" in notice
    assert "installed ipywidgets (prebuilt extensions" in notice
    assert "@jupyterlab/toc is part of JupyterLab now" in notice
    assert "bindery-nope-ext skipped (no prebuilt form known here)" in notice
    assert "'jupyter lab build --minimize=False' skipped" in notice
    assert "kernelspec" not in notice  # today's commands are left alone
    assert "open it at /nbclassic" in notice


def test_postbuild_without_classic_commands_runs_as_before(tmp_path):
    _, dockerfile = pick(tmp_path, {"postBuild": "#!/bin/bash\njupyter lab --version\n"})
    assert "/opt/bindery/classic" not in dockerfile and "nbclassic" not in dockerfile
    assert NOTICE_LABEL not in dockerfile


INSTALL_R = """# packages for the analysis
install.packages(c("ggplot2", "data.table"), repos = "https://cloud.r-project.org")
install.packages('bindery.not.in.debian')
library(jsonlite)
suppressMessages(require("Matrix"))
library(stats)  # part of R
"""


def test_r_from_debian_packages_mapped_and_missing_ones_listed(tmp_path):
    name, dockerfile = pick(tmp_path, {"install.R": INSTALL_R, "runtime.txt": "r-4.1-2022-01-01\n",
                                       "requirements.txt": "tabulate\n"})
    assert name == "MirrorRBuildPack"
    assert ("apt-get install --yes --no-install-recommends r-base-core r-cran-irkernel "
            "r-cran-ggplot2 r-cran-data.table r-cran-jsonlite r-cran-matrix &&") in dockerfile
    assert "IRkernel::installspec(sys_prefix = TRUE)" in dockerfile
    assert "uv pip install -r requirements.txt" in dockerfile  # Python alongside, as repo2docker
    assert "Rscript install.R" not in dockerfile
    notice = "\n".join(notice_of(dockerfile))
    assert "runtime.txt asks for R 4.1 as of 2022-01-01" in notice
    assert "install.R was not run" in notice
    assert "NOT installed: bindery.not.in.debian" in notice
    assert "stats" not in notice.split("Debian:")[-1]


def test_r_description_installs_the_package_after_its_imports(tmp_path):
    _, dockerfile = pick(tmp_path, {"DESCRIPTION": "Package: demo\nVersion: 1.0\nDepends: R (>= 3.5)"
                                                   ",\n    ggplot2 (>= 3.0)\nImports: jsonlite\n"})
    assert "r-cran-ggplot2 r-cran-jsonlite" in dockerfile
    lines = dockerfile.splitlines()
    assert lines.index("COPY --chown=1000:1000 src/ /home/jovyan/") < next(
        i for i, ln in enumerate(lines) if "R CMD INSTALL" in ln)


UV_PYPROJECT = ("[project]\nname = 'locked'\nversion = '1.0'\nrequires-python = '>=3.11'\n"
                "dependencies = ['tabulate==0.9.0']\n")


def test_uv_lock_is_exported_and_installed_with_hashes_before_the_repository(tmp_path):
    name, dockerfile = pick(tmp_path, {"uv.lock": "version = 1\n", "pyproject.toml": UV_PYPROJECT,
                                       "requirements.txt": "ignored\n"})
    assert name == "MirrorLockfileBuildPack"
    lines = dockerfile.splitlines()
    install = next(i for i, ln in enumerate(lines) if "uv export --frozen" in ln)
    assert "uv pip install --require-hashes -r /tmp/bindery-uv-lock.txt" in lines[install]
    assert lines.index("COPY --chown=1000:1000 src/uv.lock /home/jovyan/uv.lock") < install
    assert install < lines.index("COPY --chown=1000:1000 src/ /home/jovyan/")
    assert "install --no-deps ." not in dockerfile  # no [build-system]: not a package


def test_pylock_is_installed_exactly(tmp_path):
    name, dockerfile = pick(tmp_path, {"pylock.toml": "lock-version = '1.0'\n"})
    assert name == "MirrorLockfileBuildPack"
    assert "uv pip install -r pylock.toml" in dockerfile


def test_requirements_with_hashes_require_them(tmp_path):
    _, dockerfile = pick(tmp_path, {"requirements.txt": "tabulate==0.9.0 --hash=sha256:" + "0" * 64
                                                        + "\n"})
    assert "uv pip install -r requirements.txt --require-hashes" in dockerfile


@pytest.mark.parametrize("lock", ["pixi.toml", "conda-lock.yml", "binder/env.conda-lock.yml"])
def test_conda_locks_alone_get_a_clear_message(tmp_path, lock):
    with pytest.raises(BuildpackError, match="describes a conda environment, which needs a conda "
                                             "channel.*environment.yml"):
        pick(tmp_path, {lock: "x"})


def test_a_conda_lock_beside_a_lockfile_is_ignored_and_said(tmp_path):
    _, dockerfile = pick(tmp_path, {"pixi.toml": "x", "pylock.toml": "lock-version = '1.0'\n"})
    assert "pixi.toml ignored: it needs a conda channel" in "\n".join(notice_of(dockerfile))


DEVCONTAINER = """// a Codespaces set-up
{
  "name": "analysis",
  "image": "mcr.microsoft.com/devcontainers/python:1-3.13-bookworm",
  "features": {
    "ghcr.io/devcontainers/features/node:1": {"version": "lts"},
    "ghcr.io/devcontainers/features/docker-in-docker:2": {},
  },
  "postCreateCommand": "pip install --user tabulate==0.9.0",
  "onCreateCommand": ["echo", "created"],
  "postStartCommand": "echo started",
  "forwardPorts": [8888],
  "customizations": {"vscode": {"extensions": ["ms-python.python"]}},
}
"""


def test_devcontainer_maps_what_it_can_and_lists_the_rest(tmp_path):
    name, dockerfile = pick(tmp_path, {".devcontainer/devcontainer.json": DEVCONTAINER,
                                       "analysis.ipynb": "{}"},
                            allowed_registries="127.0.0.1:5000,docker.io")
    assert name == "MirrorDevcontainerBuildPack"
    assert dockerfile.startswith("FROM base:1\n")  # mcr.microsoft.com cannot be pulled here
    assert "-t trixie python3.13" in dockerfile  # the image's Python 3.13, from Debian trixie
    assert "--no-install-recommends nodejs npm " in dockerfile  # the node feature
    lines = dockerfile.splitlines()
    copy_all = lines.index("COPY --chown=1000:1000 src/ /home/jovyan/")
    on_create = next(i for i, ln in enumerate(lines) if "{ echo created ; }" in ln)
    post_create = next(i for i, ln in enumerate(lines) if "pip install --user tabulate" in ln)
    assert copy_all < on_create < post_create
    notice = "\n".join(notice_of(dockerfile))
    assert "its image mcr.microsoft.com/devcontainers/python:1-3.13-bookworm is from " \
           "mcr.microsoft.com" in notice
    assert "feature ghcr.io/devcontainers/features/docker-in-docker:2 ignored" in notice
    assert "node:1" not in notice
    assert "editor customizations (vscode) ignored" in notice
    assert "postStartCommand not run" in notice and "ignored: forwardPorts" in notice


def test_devcontainer_image_from_an_allowed_registry_is_the_base(tmp_path):
    _, dockerfile = pick(tmp_path, {".devcontainer.json": '{"image": "python:3.11"}'},
                         allowed_registries="127.0.0.1:5000,docker.io")
    assert dockerfile.startswith("FROM python:3.11\n")


def test_binder_files_win_over_a_devcontainer(tmp_path):
    name, _ = pick(tmp_path, {".devcontainer/devcontainer.json": DEVCONTAINER,
                              "requirements.txt": "tabulate\n"})
    assert name == "MirrorPythonBuildPack"


def test_devcontainer_dockerfile_is_built_as_a_binder_dockerfile(tmp_path):
    from bindery.builds.buildpacks.devcontainer import DevcontainerDockerfileBuildPack

    (tmp_path / ".devcontainer").mkdir()
    (tmp_path / ".devcontainer/devcontainer.json").write_text(
        '{"build": {"dockerfile": "Dockerfile", "context": ".."}, "remoteUser": "vscode"}')
    (tmp_path / ".devcontainer/Dockerfile").write_text("FROM python:3.11\n")
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        bp = DevcontainerDockerfileBuildPack("base:1")
        assert bp.detect() and bp.render() == "FROM python:3.11\n"
        assert bp._where()[1:] == (".devcontainer/Dockerfile", ".")
        assert read_label(bp.get_labels()[NOTICE_LABEL]) == [
            ".devcontainer/devcontainer.json: ignored: remoteUser"]
    finally:
        os.chdir(old)


def test_standard_mode_keeps_repo2docker_as_it_is():
    """Where the internet is reachable (standard), repo2docker's own buildpacks and base image
    build, untouched: none of bindery's kinds, mappings or notices apply."""
    from traitlets.config import Config

    from bindery.builds.buildpacks import configure
    from bindery.builds.buildpacks.devcontainer import DevcontainerDockerfileBuildPack

    standard = Config()
    configure(standard, BuildOptions(mode="standard", base_image="base:1").to_environ())
    assert "buildpacks" not in standard.Repo2Docker and "base_image" not in standard.Repo2Docker
    mirror = Config()
    configure(mirror, BuildOptions(mode="mirror", base_image="base:1").to_environ())
    names = [bp.__name__ for bp in mirror.Repo2Docker.buildpacks]
    assert names[:2] == ["DockerBuildPack", DevcontainerDockerfileBuildPack.__name__]
    assert names[2:] == ["MirrorUnsupportedBuildPack", "MirrorRBuildPack", "MirrorLockfileBuildPack",
                         "MirrorEnvironmentBuildPack", "MirrorPipfileBuildPack",
                         "MirrorDevcontainerBuildPack", "MirrorPythonBuildPack"]
