"""Repositories in the shapes Binder's users have (conda environments, old pins, ...) launch on a
site that reaches only the Debian mirror and a PyPI index, and the person is told exactly how the
environment differs from what the repository asks for.

Each kind is written here, launched to `ready` through bindery's event stream (all at once, from
the test git server, packages from the real PyPI and Debian mirror), and what it promises is
checked inside its running server (a real kernel) and in the `ready` event's notice.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bindery import datadir
from bindery.events import Event
from bindery.launches.hub_api import Hub
from tests.builds.kernel import run_in_kernel
from tests.streams import collect, git_spec

pytestmark = pytest.mark.stack


@dataclass(frozen=True)
class Kind:
    files: dict[str, str]
    code: str  # run in a kernel of the launched server ...
    expect: str  # ... whose output must contain this
    notice: tuple[str, ...] = ()  # the ready event's notice must contain each of these
    kernel: str = "python3"  # the kernel `code` runs in
    lock: str = ""  # "uv.lock" or "pylock.toml": made with uv from LOCKED before the launch
    not_in_notice: tuple[str, ...] = ()


TABULATE_WHEEL = "024ca478df22e9340661486f85298cff5f6dcdba14f3813e8830015b9ed1948f"
TABULATE_SDIST = "0095b12bf5966de529c0feb1fa08671671b3368eec77d7ef7ab114be2c068b3c"
LOCKED = ("[project]\nname = 'locked'\nversion = '1.0'\nrequires-python = '>=3.11'\n"
          "dependencies = ['six==1.16.0', 'tabulate==0.9.0']\n")
LOOSE_PYPROJECT = LOCKED.replace("six==1.16.0", "six>=1.10")  # a re-resolution would move it
SHOW_LOCKED = "import six, tabulate; print(six.__version__, tabulate.__version__)"


def lockfiles(tmp: Path) -> dict[str, str]:
    """uv.lock and pylock.toml of LOCKED, made by uv (the real one) from the package index."""
    (tmp / "pyproject.toml").write_text(LOCKED)
    uv = str(Path(sys.executable).with_name("uv"))
    subprocess.run([uv, "lock", "--quiet"], cwd=tmp, check=True, timeout=120)
    subprocess.run([uv, "export", "--frozen", "--no-emit-project", "--format", "pylock.toml",
                    "-o", "pylock.toml", "--quiet"], cwd=tmp, check=True, timeout=120)
    return {name: (tmp / name).read_text() for name in ("uv.lock", "pylock.toml")}


KINDS = {
    # conda names that differ on PyPI, a non-Python package, a pip: section, an old Python
    "environment.yml": Kind(
        {"environment.yml": "name: demo\nchannels:\n  - conda-forge\n  - defaults\n"
                            "dependencies:\n  - python=3.7\n  - pyyaml=6.0\n"
                            "  - msgpack-python=1.0\n  - nodejs\n  - pip\n  - pip:\n"
                            "    - tabulate==0.9.0\n"},
        "import sys, yaml, msgpack, tabulate; print(sys.version_info[:2], yaml.__version__[:3], "
        "msgpack.version[0], tabulate.__version__)",
        "(3, 11) 6.0 1 0.9.0",
        notice=("environment.yml asks for Python 3.7", "building with Python 3.11 instead",
                "'msgpack-python=1.0' installed as msgpack (its PyPI name)",
                "'nodejs' left out: not a Python package",
                "installed from the Python package index instead: pyyaml==6.0.*, msgpack==1.0.*, "
                "tabulate==0.9.0"),
        not_in_notice=("'pyyaml",)),
    # a 2019 lock for Python 3.6: pandas 0.24.2 and numpy 1.16.2 have no wheels for 3.11 and
    # their sources no longer build; the rest installs as pinned
    "Pipfile.lock (2019)": Kind(
        {"Pipfile.lock": json.dumps({
            "_meta": {"hash": {"sha256": "0" * 64}, "pipfile-spec": 6,
                      "requires": {"python_version": "3.6"},
                      "sources": [{"name": "pypi", "url": "https://pypi.org/simple",
                                   "verify_ssl": True}]},
            "default": {"pandas": {"version": "==0.24.2"}, "numpy": {"version": "==1.16.2"},
                        "python-dateutil": {"version": "==2.8.0"},
                        "pytz": {"version": "==2018.9"}, "six": {"version": "==1.12.0"}},
            "develop": {}}, indent=4)},
        "import pandas, pytz, six; print('pandas-ok', int(pandas.DataFrame({'a': [1, 2]}).a.sum()),"
        " pytz.__version__, six.__version__)",
        "pandas-ok 3 2018.9 1.12.0",
        notice=("Pipfile.lock asks for Python 3.6", "its pinned versions cannot be installed "
                "together on Python 3.11", "pandas 0.24.2 → ", "numpy 1.16.2 → "),
        not_in_notice=("pytz 2018.9 →", "six 1.12.0 →")),
    # a 2020 conda environment with build strings (absl-py 0.9.0 ships only sources, whose
    # setup.py refuses Python 3.10+)
    "environment.yml (2020 pins)": Kind(
        {"environment.yml": "name: old\nchannels:\n  - defaults\ndependencies:\n"
                            "  - python=3.7\n  - absl-py=0.9.0=py37_0\n"
                            "  - numpy=1.18.1=py37h4f9e942_0\n  - pip\n"},
        "import absl, numpy; from absl import flags; print('absl-ok', numpy.__version__[:2])",
        "absl-ok 1.",
        notice=("'absl-py=0.9.0=py37_0' conda build 'py37_0' dropped", "numpy 1.18.1.* → 1.",
                "absl-py 0.9.0.* → 0.")),
    # the four classic extension commands of the Notebook 6 era, with today's commands around
    "postBuild (classic extensions)": Kind(
        {"postBuild": "#!/bin/bash\nset -e\njupyter contrib nbextension install --user\n"
                      "jupyter nbextension enable --py widgetsnbextension --sys-prefix\n"
                      "jupyter serverextension enable --py jupyterlab --sys-prefix\n"
                      "jupyter labextension install @jupyter-widgets/jupyterlab-manager@2.0 "
                      "@jupyterlab/toc bindery-no-such-ext --no-build\n"
                      "jupyter lab build\n"
                      "jupyter --version > $HOME/postbuild-went-on.txt\n"},
        "import ipywidgets, nbclassic; print(open('postbuild-went-on.txt').read() and 'went-on', "
        "ipywidgets.__version__[:1])",
        "went-on 8",
        notice=("'jupyter contrib nbextension install --user' skipped",
                "run as 'jupyter server extension enable jupyterlab --sys-prefix'",
                "run as 'jupyter nbclassic-extension enable --py widgetsnbextension",
                "installed ipywidgets (prebuilt extensions", "@jupyterlab/toc is part of "
                "JupyterLab now", "bindery-no-such-ext skipped", "'jupyter lab build' skipped",
                "open it at /nbclassic")),
    # R: install.R and runtime.txt as a Binder R repository has them, and an R notebook
    "R (install.R)": Kind(
        {"install.R": "install.packages(c('jsonlite', 'bindery.not.in.debian'))\n"
                      "library(jsonlite)\n",
         "runtime.txt": "r-4.1-2022-01-01\n",
         # Python beside R, with pip's hash checking (the wheel's and the sdist's hashes)
         "requirements.txt": "tabulate==0.9.0 \\\n    --hash=sha256:" + TABULATE_WHEEL +
                             " \\\n    --hash=sha256:" + TABULATE_SDIST + "\n",
         "analysis.ipynb": json.dumps({
             "cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                        "outputs": [], "source": "library(jsonlite)\ntoJSON(list(a = 1))"}],
             "metadata": {"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}},
             "nbformat": 4, "nbformat_minor": 5})},
        "library(jsonlite); cat('r-ok', R.version$major, as.character(toJSON(list(a = 1))), "
        "'\\n')",
        'r-ok 4 {"a":[1]}',
        notice=("runtime.txt asks for R 4.1 as of 2022-01-01", "install.R was not run",
                "installed from Debian: r-cran-jsonlite",
                "NOT installed: bindery.not.in.debian"),
        kernel="ir"),
    # lockfiles: installed exactly as locked (six 1.16.0, though the project allows newer)
    "uv.lock": Kind({"pyproject.toml": LOOSE_PYPROJECT}, SHOW_LOCKED, "1.16.0 0.9.0", lock="uv.lock"),
    "pylock.toml": Kind({}, SHOW_LOCKED, "1.16.0 0.9.0", lock="pylock.toml"),
    # set up for Codespaces: an image from a registry this site cannot reach, the Python feature,
    # a postCreateCommand, editor settings (the Node feature, Debian's nodejs and npm, is checked
    # in tests/unit/test_buildpacks.py: npm's Debian dependencies make a 350 s build)
    "devcontainer.json": Kind(
        {".devcontainer/devcontainer.json": (
            '// Codespaces\n{"name": "demo",\n'
            ' "image": "mcr.microsoft.com/devcontainers/python:1-3.11-bookworm",\n'
            ' "features": {"ghcr.io/devcontainers/features/python:1": {"version": "3.11"},\n'
            '              "ghcr.io/devcontainers/features/github-cli:1": {}},\n'
            ' "postCreateCommand": "pip install tabulate==0.9.0 && echo created > ~/created.txt",\n'
            ' "customizations": {"vscode": {"extensions": ["ms-toolsai.jupyter"]}},\n}\n')},
        "import sys, tabulate; print(open('created.txt').read().strip(), tabulate.__version__, "
        "sys.version_info[:2])",
        "created 0.9.0 (3, 11)",
        notice=("its image mcr.microsoft.com/devcontainers/python:1-3.11-bookworm is from "
                "mcr.microsoft.com, which this service cannot pull from",
                "feature ghcr.io/devcontainers/features/github-cli:1 ignored",
                "editor customizations (vscode) ignored"),
        not_in_notice=("features/python",)),
}


@dataclass
class Launched:
    path: str
    url: str
    events: list[Event]

    @property
    def log(self) -> str:
        return "".join(e.message for e in self.events)


async def stop(stack, events: list[Event]) -> None:
    if events and events[-1].phase == "ready":
        hub = Hub(datadir.hub_api(stack), datadir.hub_token(stack), 30)
        try:
            await hub.stop_server(events[-1].data()["user"])
        finally:
            await hub.aclose()


@pytest.fixture(scope="module")
async def launched(stack, git_server, tmp_path_factory):
    locks = lockfiles(tmp_path_factory.mktemp("locks"))
    repos = {name: git_server.create("people", {**kind.files, **(
        {kind.lock: locks[kind.lock]} if kind.lock else {})}) for name, kind in KINDS.items()}
    results = await asyncio.gather(*(collect(stack, "git", git_spec(url, "main"))
                                     for _, url in repos.values()))
    out = {name: Launched(path, url, events)
           for (name, (path, url)), events in zip(repos.items(), results, strict=True)}
    yield out
    for item in out.values():
        await stop(stack, item.events)


@pytest.mark.parametrize("name", list(KINDS))
async def test_launches_with_its_promise_inside_and_a_notice_of_what_changed(launched, name):
    kind, item = KINDS[name], launched[name]
    last = item.events[-1]
    assert last.phase == "ready", f"{name}: {last.message}\n{item.log[-3000:]}"
    data = last.data()
    output = await run_in_kernel(data["url"], data["token"], kind.code, kernel_name=kind.kernel)
    assert kind.expect in output, f"{name}: kernel printed {output!r}"
    notice = "\n".join(data.get("notice", []))
    for words in kind.notice:
        assert words in notice, f"{name}: the notice lacks {words!r}:\n{notice}"
        assert words in item.log, f"{name}: the build log lacks {words!r}"
    for words in kind.not_in_notice:
        assert words not in notice, f"{name}: the notice has {words!r}:\n{notice}"


async def test_classic_notebook_ui_is_served_where_the_repository_asks(launched):
    data = launched["postBuild (classic extensions)"].events[-1].data()
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(f"{data['url']}nbclassic/tree",
                                    headers={"Authorization": f"token {data['token']}"})
    assert response.status_code == 200, response.text[:500]
    assert "nbclassic" in response.text.lower() or "jupyter notebook" in response.text.lower()


async def test_r_notebook_opens_with_its_r_kernel(launched):
    """The repository's R notebook names the kernel `ir`, which the server has."""
    data = launched["R (install.R)"].events[-1].data()
    headers = {"Authorization": f"token {data['token']}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:
        specs = (await client.get(f"{data['url']}api/kernelspecs")).json()["kernelspecs"]
        notebook = (await client.get(f"{data['url']}api/contents/analysis.ipynb")).json()
    wanted = notebook["content"]["metadata"]["kernelspec"]["name"]
    assert wanted == "ir" and specs[wanted]["spec"]["language"] == "R"


async def test_python_beside_r_with_hashed_requirements(launched):
    data = launched["R (install.R)"].events[-1].data()
    output = await run_in_kernel(data["url"], data["token"], "import tabulate; "
                                 "print(tabulate.__version__)")
    assert "0.9.0" in output
    assert "--require-hashes" in launched["R (install.R)"].log


async def test_a_launch_of_the_built_image_carries_the_same_notice(stack, launched):
    """The notice lives in the image: a later launch, which builds nothing, says the same."""
    first = launched["environment.yml"]
    assert first.events[-1].phase == "ready"
    events = await collect(stack, "git", git_spec(first.url, "main"))
    try:
        assert events[-1].phase == "ready", events[-1].message
        assert not any(e.phase == "building" for e in events)  # nothing was built
        assert events[-1].data()["notice"] == first.events[-1].data()["notice"]
    finally:
        await stop(stack, events)
