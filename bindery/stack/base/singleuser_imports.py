"""Keep the hub's own modules out of a single-user server's start (run once, when the base image is
built; bindery/stack/base/Containerfile).

Why: ``jupyterhub-singleuser`` imports ``jupyterhub.log``, ``jupyterhub.utils``,
``jupyterhub.scopes`` and ``jupyterhub.metrics`` for a few helpers, and those import the hub's
database layer at module level (``jupyterhub.orm``, ``jupyterhub.roles``, the request handlers, and
with them SQLAlchemy and alembic). A single-user server never uses any of it: measured on the base
image, 0.36 s of a 2.1 s start on one CPU, for every launched server (docs/performance.md).

What: the module-level imports of those hub-side modules become deferred modules (a name whose
first attribute use imports the module through the normal import system), so they load on first
use instead, which in a single-user server is never; ``log_request``'s health-check test looks the
hub's handler class up only if the hub's handlers are loaded (if they are not, no handler can be
one). Nothing else changes: the same functions, the same behaviour when the hub's modules are used.

Each edit must find its exact text once in the pinned jupyterhub version (bindery pins it: the hub
and the single-user servers run the same one), or the script stops and the base build fails with a
message naming the file: a new jupyterhub version needs this file revisited, not a silent no-op.

Usage (inside the image): python singleuser_imports.py [PACKAGE_DIR]   (default: the installed
jupyterhub). Prints the hub-side modules still loaded by the single-user entry point, and fails if
there are any.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

HELPER = "_bindery_deferred.py"
HELPER_TEXT = '''"""Deferred modules for jupyterhub's single-user imports (written by bindery's base
image build, bindery/stack/base/singleuser_imports.py)."""

import importlib


class DeferredModule:
    """Stands for the module `name`, imported (by the normal import system) when one of its
    attributes is first used."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self):
        return f"<deferred module {self._name!r}>"
'''
DEFERRED_IMPORT = "from ._bindery_deferred import DeferredModule\n"

# file -> [(text found exactly once, its replacement)]
EDITS: dict[str, list[tuple[str, str]]] = {
    "scopes.py": [
        ("import sqlalchemy as sa\n", DEFERRED_IMPORT + "\nsa = DeferredModule('sqlalchemy')\n"),
        ("from . import orm, roles\n",
         "orm = DeferredModule('jupyterhub.orm')\nroles = DeferredModule('jupyterhub.roles')\n"),
    ],
    "metrics.py": [
        ("from . import orm\n", DEFERRED_IMPORT + "\norm = DeferredModule('jupyterhub.orm')\n"),
    ],
    "utils.py": [
        ("from sqlalchemy.exc import SQLAlchemyError\n",
         DEFERRED_IMPORT + "\nsqlalchemy = DeferredModule('sqlalchemy')\n"),
        ("except SQLAlchemyError:", "except sqlalchemy.exc.SQLAlchemyError:"),
    ],
    "log.py": [
        ("from .handlers.pages import HealthCheckHandler\n", "import sys\n"),
        ("isinstance(handler, StaticFileHandler | HealthCheckHandler)",
         "(isinstance(handler, StaticFileHandler) or ("
         "'jupyterhub.handlers.pages' in sys.modules and isinstance("
         "handler, sys.modules['jupyterhub.handlers.pages'].HealthCheckHandler)))"),
    ],
}

# Loaded by the single-user entry point before the edits, never after.
HUB_SIDE = ("sqlalchemy", "alembic", "jupyterhub.orm", "jupyterhub.roles", "jupyterhub.handlers")
# A Python expression (needs `sys`): the hub-side modules loaded so far, sorted.
HUB_SIDE_LOADED = (f"sorted(m for m in sys.modules if m.split('.')[0] in {HUB_SIDE[:2]!r} "
                   f"or m.startswith({HUB_SIDE[2:]!r}))")
CHECK = f"import sys, jupyterhub.singleuser.extension\nprint(' '.join({HUB_SIDE_LOADED}))"


class EditFailed(RuntimeError):
    pass


def package_dir() -> Path:
    spec = importlib.util.find_spec("jupyterhub")  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        raise EditFailed("jupyterhub is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def edit(package: Path) -> None:
    """Apply every edit, or none (all texts are checked before anything is written)."""
    new_texts = {}
    for name, edits in EDITS.items():
        text = (package / name).read_text()
        for old, new in edits:
            if text.count(old) != 1:
                raise EditFailed(f"jupyterhub/{name}: expected {old.strip()!r} once, found it "
                                 f"{text.count(old)} times (a new jupyterhub version? revisit "
                                 f"bindery/stack/base/singleuser_imports.py)")
            text = text.replace(old, new)
        new_texts[name] = text
    (package / HELPER).write_text(HELPER_TEXT)
    for name, text in new_texts.items():
        (package / name).write_text(text)


def hub_side_modules(package: Path) -> list[str]:
    """Hub-side modules the single-user entry point loads, in a fresh interpreter."""
    env_path = str(package.parent)
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                            timeout=120, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    if result.returncode != 0:
        raise EditFailed(f"importing the single-user extension failed:\n{result.stderr[-2000:]}")
    return result.stdout.split()


def main(argv: list[str]) -> int:
    package = Path(argv[1]) if len(argv) > 1 else package_dir()
    try:
        edit(package)
        left = hub_side_modules(package)
    except EditFailed as exc:
        print(f"singleuser_imports: {exc}", file=sys.stderr)
        return 1
    if left:
        print(f"singleuser_imports: still loaded at start: {' '.join(left)}", file=sys.stderr)
        return 1
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True,
                   timeout=300)  # fmt: skip
    print("singleuser_imports: the single-user server starts without the hub's database layer")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
