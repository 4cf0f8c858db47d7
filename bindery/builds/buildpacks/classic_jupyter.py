#!/opt/venv/bin/python
"""Classic Jupyter extension commands in postBuild, mapped to today's Jupyter (stdlib only).

Binder repositories from the Notebook 6 era end postBuild with commands today's Jupyter lacks:
``jupyter contrib nbextension install``, ``jupyter nbextension enable``, ``jupyter serverextension
enable``, ``jupyter labextension install <npm package>``. A mirror build runs postBuild with this
file first on PATH as ``jupyter``: each such command becomes its present-day equivalent, or is
skipped with a line saying so, and every other ``jupyter`` command runs unchanged. The buildpack
reads postBuild with ``plan()`` too, to list what was changed in the launch's notice.

- ``jupyter serverextension …`` → ``jupyter server extension …`` (``--py`` dropped: today's
  command takes the module name);
- ``jupyter nbextension …`` → ``jupyter nbclassic-extension …`` (nbclassic, the classic notebook
  UI on Jupyter Server, is installed for such repositories and serves ``/nbclassic``);
- ``jupyter labextension install <npm packages>`` → ``pip install`` of the prebuilt extension each
  ships on PyPI, where known (``PREBUILT``); extensions built into JupyterLab today are skipped;
- ``jupyter contrib nbextension install``, ``jupyter labextension build/link``, ``jupyter lab
  build``: skipped (the first needs Notebook 6; prebuilt extensions need no build).
A mapped command that fails is said in the log and does not stop the build.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

REAL = "/opt/venv/bin/jupyter"
# npm package of a JupyterLab extension → its prebuilt form on PyPI ("" = part of JupyterLab now)
PREBUILT = {
    "@jupyter-widgets/jupyterlab-manager": "ipywidgets",
    "jupyter-matplotlib": "ipympl",
    "@bokeh/jupyter_bokeh": "jupyter_bokeh",
    "jupyterlab-plotly": "plotly",
    "plotlywidget": "plotly",
    "@jupyterlab/git": "jupyterlab-git",
    "@pyviz/jupyterlab_pyviz": "pyviz_comms",
    "@jupyter-voila/jupyterlab-preview": "voila",
    "jupyterlab-drawio": "jupyterlab-drawio",
    "@ryantam626/jupyterlab_code_formatter": "jupyterlab_code_formatter",
    "@krassowski/jupyterlab-lsp": "jupyterlab-lsp",
    "jupyterlab-spreadsheet": "jupyterlab-spreadsheet-editor",
    "@jupyterlab/latex": "jupyterlab-latex",
    "jupyter-leaflet": "ipyleaflet",
    "ipyvolume": "ipyvolume",
    "bqplot": "bqplot",
    "ipycanvas": "ipycanvas",
    "nglview-js-widgets": "nglview",
    "@jupyterlab/toc": "",
    "@jupyterlab/debugger": "",
    "jupyterlab-dash": "",
}
COMMAND = re.compile(r"(?:^|[;&|(`]\s*|\s)(jupyter\s+(?:contrib\s+nbextension|nbextension|"
                     r"serverextension|labextension|lab\s+build)\b[^;&|\n#`)]*)")


def _package(npm: str) -> str:
    """An npm spec ("@scope/name@1.2") without its version."""
    return npm if "@" not in npm[1:] else npm[: npm.index("@", 1)]


def plan(argv: list[str]) -> tuple[list[list[str]], str]:
    """(commands to run instead, a sentence saying what was done) for `jupyter <argv>`; for a
    command that needs no change: ([["jupyter", *argv]], "")."""
    words = [a for a in argv if a]
    said = "jupyter " + " ".join(words)
    if words[:3] == ["contrib", "nbextension", "install"] or words[:2] == ["contrib", "nbextension"]:
        return [], (f"'{said}' skipped: jupyter_contrib_nbextensions works only with the classic "
                    "Notebook 6, which does not run beside today's Jupyter")
    if words[:1] == ["serverextension"]:
        rest = [w for w in words[1:] if w != "--py"]
        return [["jupyter", "server", "extension", *rest]], \
            f"'{said}' run as 'jupyter server extension {' '.join(rest)}'"
    if words[:1] == ["nbextension"]:
        return [["jupyter", "nbclassic-extension", *words[1:]]], \
            (f"'{said}' run as 'jupyter nbclassic-extension {' '.join(words[1:])}' (for the "
             "classic notebook UI, nbclassic, at /nbclassic)")
    if words[:2] in (["labextension", "build"], ["labextension", "link"], ["lab", "build"]):
        return [], f"'{said}' skipped: today's JupyterLab uses prebuilt extensions, no build"
    if words[:2] == ["labextension", "install"]:
        packages = [w for w in words[2:] if not w.startswith("-")]
        installs, skipped, builtin = [], [], []
        for npm in packages:
            pypi = PREBUILT.get(_package(npm))
            if pypi is None:
                skipped.append(npm)
            elif pypi:
                installs.append(pypi)
            else:
                builtin.append(npm)
        parts = []
        if installs:
            parts.append(f"installed {', '.join(installs)} (prebuilt extensions, from the Python "
                         "package index)")
        if builtin:
            parts.append(f"{', '.join(builtin)} is part of JupyterLab now")
        if skipped:
            parts.append(f"{', '.join(skipped)} skipped (no prebuilt form known here)")
        commands = [["uv", "pip", "install", *installs]] if installs else []
        return commands, f"'{said}': " + "; ".join(parts)
    return [["jupyter", *words]], ""


def scan(script: str) -> list[str]:
    """What `plan` will say for each classic command in a postBuild script (read, not run)."""
    sentences = []
    for match in COMMAND.finditer(script):
        try:
            words = shlex.split(match.group(1).strip())
        except ValueError:
            continue
        _, said = plan(words[1:])
        if said:
            sentences.append(said)
    return sentences


def main(argv: list[str]) -> int:
    commands, said = plan(argv)
    if not said:
        os.execv(REAL, [REAL, *argv])
    print(f"[bindery] {said}", flush=True)
    for command in commands:
        if command[0] == "jupyter":
            command = [REAL, *command[1:]]
        status = subprocess.run(command).returncode
        if status:
            print(f"[bindery] '{' '.join(command)}' exited with status {status}; the build goes on",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
