"""Real Binder repositories build with bindery's mirror buildpacks and launch, each kind's promise
checked inside its running server (a kernel, or the server's contents API, with the person's token).

All kinds are launched at once through bindery's event stream (the build queue runs them two at a
time), from the test git server, with packages from the real PyPI and the Debian mirror.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
import pytest

from bindery import datadir
from bindery.events import Event
from bindery.launches.hub_api import Hub
from tests.builds.kernel import run_in_kernel
from tests.streams import collect, git_spec

pytestmark = pytest.mark.stack

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'
TABULATE = "tabulate==0.9.0\n"  # small, pure Python, one wheel
SHOW_TABULATE = "import tabulate; print(tabulate.__version__)"


@dataclass(frozen=True)
class Kind:
    files: dict[str, str]
    code: str = ""  # run in a kernel of the launched server
    expect: str = ""  # ... whose output must contain this
    fails_with: tuple[str, ...] = ()  # the build must fail, its message containing all of these
    log_has: tuple[str, ...] = field(default=())  # lines the build log must contain


KINDS = {
    "requirements.txt": Kind({"requirements.txt": TABULATE, "index.ipynb": NOTEBOOK},
                             SHOW_TABULATE, "0.9.0"),
    "setup.py": Kind({"setup.py": "from setuptools import setup\nsetup(name='fixture-setup', "
                                  "version='1.0', py_modules=['fixture_setup'])\n",
                      "fixture_setup.py": "WHO = 'setup.py'\n"},
                     # installed as a package (metadata), not merely importable from the folder
                     "from importlib import metadata; print(metadata.version('fixture-setup'))",
                     "1.0"),
    "pyproject.toml": Kind({"pyproject.toml": "[build-system]\nrequires = ['setuptools>=61']\n"
                            "build-backend = 'setuptools.build_meta'\n[project]\n"
                            "name = 'fixture-pyproject'\nversion = '2.0'\n"
                            "dependencies = ['tabulate==0.9.0']\n",
                            "fixture_pyproject.py": "WHO = 'pyproject'\n"},
                           "from importlib import metadata; import tabulate; "
                           "print(metadata.version('fixture-pyproject'), tabulate.__version__)",
                           "2.0 0.9.0"),
    "Pipfile": Kind({"Pipfile": '[packages]\ntabulate = "==0.9.0"\n'}, SHOW_TABULATE, "0.9.0"),
    # a wheel from PyPI, installed inside the build steps' sandbox (their own network)
    "requirements.txt (numpy)": Kind({"requirements.txt": "numpy==2.1.3\n"},
                                     "import numpy; print(numpy.__version__)", "2.1.3"),
    "apt.txt": Kind({"apt.txt": "# a tiny binary from the Debian mirror\njq\n"},
                    "import subprocess; print(subprocess.run(['jq', '--version'], "
                    "capture_output=True, text=True).stdout)", "jq-1.6"),
    "postBuild": Kind({"postBuild": "#!/bin/bash\nset -e\necho made-by-postBuild > "
                                    "$HOME/postbuild-ran.txt\n"},
                      "print(open('postbuild-ran.txt').read())", "made-by-postBuild"),
    "start": Kind({"start": '#!/bin/bash\nexport BINDERY_START_RAN=yes\nexec "$@"\n'},
                  "import os; print(os.environ.get('BINDERY_START_RAN'))", "yes"),
    "runtime.txt": Kind({"runtime.txt": "python-3.13\n", "requirements.txt": TABULATE},
                        "import sys, tabulate; print(sys.version_info[:2], tabulate.__version__)",
                        "(3, 13) 0.9.0"),  # Debian trixie's Python, in a kernel of its own
    "runtime.txt (unobtainable)": Kind({"runtime.txt": "python-3.12\n"},
                                       "import sys; print(sys.version_info[:2])", "(3, 11)",
                                       log_has=("runtime.txt asks for Python 3.12",
                                                "building with Python 3.11 instead")),
    # Its own Jupyter versions replace the base image's (trimmed) packages: the server starts with
    # them as they ship (bindery/stack/base/server_trims.py edits only the files it installed).
    "pinned Jupyter versions": Kind({"requirements.txt": "jupyter_server==2.16.0\njsonschema==4.25.1\n"},
                                    "from importlib import metadata; import inspect, jsonschema._format as f; "
                                    "print(metadata.version('jupyter_server'), metadata.version('jsonschema'), "
                                    "'bindery' in inspect.getsource(f))", "2.16.0 4.25.1 False"),
    "no configuration": Kind({"index.ipynb": NOTEBOOK}, "import notebook; print('jupyter-only')",
                             "jupyter-only"),
    "binder/ folder": Kind({"requirements.txt": "bindery-no-such-package-at-the-top==1.0\n",
                            "binder/requirements.txt": TABULATE}, SHOW_TABULATE, "0.9.0"),
    # failures name the cause and the file to change
    "nonexistent package": Kind({"requirements.txt": "bindery-no-such-package-xyz==1.0\n"},
                                fails_with=("bindery-no-such-package-xyz", "requirements.txt")),
    "failing postBuild": Kind({"postBuild": "#!/bin/bash\necho about to fail\nexit 3\n"},
                              fails_with=("postBuild exited with status 3", "fix postBuild")),
}


@dataclass
class Launched:
    path: str
    url: str
    events: list[Event]
    seconds: float

    @property
    def log(self) -> str:
        return "".join(e.message for e in self.events)


async def launch(stack, url: str, ref: str = "main") -> tuple[list[Event], float]:
    t0 = time.monotonic()
    events = await collect(stack, "git", git_spec(url, ref))
    return events, time.monotonic() - t0


@pytest.fixture(scope="module")
async def launched(stack, git_server):
    """Every kind launched at once; their servers and users are removed afterwards."""
    repos = {name: git_server.create("kind", kind.files) for name, kind in KINDS.items()}
    results = await asyncio.gather(*(launch(stack, url) for _, url in repos.values()))
    out = {name: Launched(path, url, events, seconds)
           for (name, (path, url)), (events, seconds) in zip(repos.items(), results, strict=True)}
    yield out
    hub = Hub(datadir.hub_api(stack), datadir.hub_token(stack), 30)
    try:
        for item in out.values():
            if item.events[-1].phase == "ready":
                await hub.stop_server(item.events[-1].data()["user"])
    finally:
        await hub.aclose()


@pytest.mark.parametrize("name", [n for n, k in KINDS.items() if not k.fails_with])
async def test_kind_builds_and_launches_with_its_promise_inside(launched, name):
    kind, item = KINDS[name], launched[name]
    last = item.events[-1]
    assert last.phase == "ready", f"{name}: {last.message}\n{item.log[-3000:]}"
    data = last.data()
    output = await run_in_kernel(data["url"], data["token"], kind.code)
    assert kind.expect in output, f"{name}: kernel printed {output!r}"
    for line in kind.log_has:
        assert line in item.log, f"{name}: build log lacks {line!r}"


@pytest.mark.parametrize("name", [n for n, k in KINDS.items() if k.fails_with])
async def test_failure_names_the_cause_and_the_file(launched, name):
    last = launched[name].events[-1]
    assert last.phase == "failed", f"{name}: {last.phase} {last.message}"
    for words in KINDS[name].fails_with:
        assert words in last.message, f"{name}: {last.message!r} lacks {words!r}"
    assert "Traceback" not in last.message


async def test_auto_picks_mirror_here_and_says_why(launched):
    log = launched["requirements.txt"].log
    assert "Buildpacks: mirror (auto:" in log
    # this machine reaches neither Docker Hub nor conda-forge; the log names what it could not reach
    assert "(https://registry-1.docker.io/v2/) is not reachable" in log
    assert "(https://conda.anaconda.org/conda-forge/) is not reachable" in log


async def test_postbuild_file_seen_through_the_contents_api(launched):
    data = launched["postBuild"].events[-1].data()
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(f"{data['url']}api/contents/postbuild-ran.txt",
                                    headers={"Authorization": f"token {data['token']}"})
    assert response.status_code == 200
    assert response.json()["content"].strip() == "made-by-postBuild"


async def test_notebook_only_commit_rebuilds_without_reinstalling(stack, git_server, launched):
    first = launched["requirements.txt"]
    assert first.events[-1].phase == "ready"
    assert "+ tabulate==0.9.0" in first.log  # the first build installed it
    commit = git_server.commit(git_server.root / first.path, {"index.ipynb": NOTEBOOK.replace(
        '"cells": []', '"cells": [{"cell_type": "markdown", "metadata": {}, "source": "hi"}]')},
        "notebook only")
    # by its commit: `main` may still resolve to the first commit (resolved refs are reused for
    # ref_cache_seconds, and the first launch can be that recent)
    events, seconds = await launch(stack, first.url, commit)
    log = "".join(e.message for e in events)
    assert events[-1].phase == "ready", log[-3000:]
    assert "Building " in log  # a new commit: a new image was built ...
    install = log.index("[bindery] installing the packages listed in requirements.txt")
    step = log[install:log.index("STEP", install)]  # what the install step printed
    assert "Using cache" in step and "Resolved" not in step, step  # its layer came from cache
    assert "+ tabulate" not in log and "Installed" not in log
    print(f"\nrebuild after a notebook-only commit: launch {seconds:.1f} s "
          f"(first: {first.seconds:.1f} s)")
    data = events[-1].data()
    assert "0.9.0" in await run_in_kernel(data["url"], data["token"], SHOW_TABULATE)
    hub = Hub(datadir.hub_api(stack), datadir.hub_token(stack), 30)
    try:
        await hub.stop_server(data["user"])
    finally:
        await hub.aclose()
