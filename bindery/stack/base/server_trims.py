"""Keep out of a Jupyter server's start what it does not need to answer (run once, when the base
image is built; bindery/stack/base/Containerfile).

Why: every launched server pays its own start on one CPU, and two imports were most of it
(measured in the base image, docs/performance.md):

- ``jupyterhub-singleuser`` imports ``jupyterhub.log``, ``.utils``, ``.scopes`` and ``.metrics``
  for a few helpers, and those import the hub's database layer at module level (``jupyterhub.orm``,
  ``.roles``, the request handlers, SQLAlchemy, alembic): 0.36 s, never used by a single-user server;
- ``jupyter_server`` imports ``jupyter_events``, which imports ``jsonschema``, whose format checkers
  import ``rfc3987_syntax`` to check the ``iri`` formats: it builds ~40 Earley parsers (lark) at
  import, 0.7 s, and a server only needs them if something checks an ``iri``;
- the single-user extension talks to its hub with ``aiohttp``, whose import makes its two default
  TLS contexts, loading the system's CA certificates twice: 0.05 s, for a server that reaches its
  hub over plain HTTP (``jupyter notebook`` alone never imports aiohttp, so this cost is all the
  launched server's).

What: those module-level imports become deferred (the same functions, importing their module on
first use), so they load when used instead, which at a server's start is never. ``log_request``'s
health-check test looks the hub's handler class up only if the hub's handlers are loaded (if they
are not, no handler can be one). ``jsonschema`` still registers the ``iri`` checkers exactly when
``rfc3987_syntax`` is installed; the grammars are built on the first ``iri`` check. aiohttp makes
its default TLS contexts on their first use (the first HTTPS request without a context of its own),
the same contexts as before, once each.

Each edit must find its exact text once in the pinned package versions (the base image pins them),
or the script stops and the base build fails naming the file: a new version needs this file
revisited, not a silent no-op. The originals are kept (``ORIGINALS``) so ``--undo`` gives the
packages as they ship (the bench's untrimmed start). A repository that installs another version of
one of these packages gets that package as it ships: an edit lives only in the files it changed.

Usage (inside the image): python server_trims.py [--undo] [SITE_PACKAGES]   (default: the site
folder jupyterhub is installed in). Prints the deferred modules still loaded by a server's start and
fails if there are any.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ORIGINALS = Path("/opt/bindery/untrimmed")  # the edited files as they shipped, for --undo

HELPER = "_bindery_deferred.py"  # written into jupyterhub's package
HELPER_TEXT = '''"""Deferred modules for jupyterhub's single-user imports (written by bindery's base
image build, bindery/stack/base/server_trims.py)."""

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

# jsonschema's iri checkers, registered as before (when rfc3987_syntax and lark are installed), the
# grammars built on their first call.
DEFERRED_IRI = '''if not all(importlib.util.find_spec(m) for m in ("rfc3987_syntax", "lark")):
            raise ImportError("rfc3987_syntax")

        def _rfc3987_is_valid_syntax(rule, value):
            # Deferred by bindery's base image: importing it builds its grammars (0.7 s).
            from rfc3987_syntax import is_valid_syntax

            return is_valid_syntax(rule, value)
'''

# aiohttp's default TLS contexts (verified, unverified), made on first use, once each; the old names
# still read them (module __getattr__), for code outside the module that uses them.
DEFERRED_SSL_CONTEXTS = '''@functools.cache
def _default_ssl_context(verified: bool) -> SSLContext:
    # Deferred by bindery's base image: made at import, they loaded the CA certificates twice
    # (0.05 s) in every Jupyter server, which talks to its hub over plain HTTP.
    return _make_ssl_context(verified)


def __getattr__(name: str) -> Any:
    if name in ("_SSL_CONTEXT_VERIFIED", "_SSL_CONTEXT_UNVERIFIED"):
        return _default_ssl_context(name == "_SSL_CONTEXT_VERIFIED")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
'''

# package -> file -> [(text found exactly once, its replacement)]
EDITS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "jupyterhub": {
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
    },
    "jsonschema": {
        "_format.py": [
            ("import ipaddress\n", "import importlib.util\nimport ipaddress\n"),
            ("from rfc3987_syntax import is_valid_syntax as _rfc3987_is_valid_syntax\n",
             DEFERRED_IRI),
        ],
    },
    "aiohttp": {
        "connector.py": [
            ("_SSL_CONTEXT_VERIFIED = _make_ssl_context(True)\n"
             "_SSL_CONTEXT_UNVERIFIED = _make_ssl_context(False)\n", DEFERRED_SSL_CONTEXTS),
            ("            return _SSL_CONTEXT_UNVERIFIED\n        sslcontext = self._ssl\n",
             "            return _default_ssl_context(False)\n        sslcontext = self._ssl\n"),
            ("            return _SSL_CONTEXT_UNVERIFIED\n        return _SSL_CONTEXT_VERIFIED\n",
             "            return _default_ssl_context(False)\n"
             "        return _default_ssl_context(True)\n"),
        ],
    },
}
NEW_FILES = {"jupyterhub": {HELPER: HELPER_TEXT}}

# Loaded by a server's start before the edits, never after: the hub's database layer, the grammars.
HUB_SIDE = ("sqlalchemy", "alembic", "jupyterhub.orm", "jupyterhub.roles", "jupyterhub.handlers")
GRAMMARS = ("rfc3987_syntax", "lark")
DEFERRED = HUB_SIDE + GRAMMARS
# Made by a server's start before the edits, never after (named in the report like a module).
TLS_CONTEXTS = "aiohttp.connector:default-TLS-contexts"
_TLS_MADE = (f"[{TLS_CONTEXTS!r} for c in [sys.modules.get('aiohttp.connector')] if c is not None "
             "and ('_SSL_CONTEXT_VERIFIED' in vars(c) or (hasattr(c, '_default_ssl_context') "
             "and c._default_ssl_context.cache_info().currsize > 0))]")
# A Python expression (needs `sys`): the deferred modules loaded (and deferred contexts made) so
# far, sorted.
DEFERRED_LOADED = (f"sorted([m for m in sys.modules if m.split('.')[0] in "
                   f"{tuple(m for m in DEFERRED if '.' not in m)!r} "
                   f"or m.startswith({tuple(m for m in DEFERRED if '.' in m)!r})] + {_TLS_MADE})")
# A server's start, as far as imports go: the single-user extension (what jupyterhub-singleuser
# loads), then a Jupyter server with its extensions initialised (notebook, lab, terminals, lsp...)
# on a free port, its runtime files in a folder of their own.
CHECK = ("import sys, jupyterhub.singleuser.extension\n"
         "from notebook.app import JupyterNotebookApp\n"
         "JupyterNotebookApp.initialize_server(argv=['--ip=127.0.0.1', '--port=0'])\n"
         f"print(' '.join({DEFERRED_LOADED}))\n")


class EditFailed(RuntimeError):
    pass


def site_dir() -> Path:
    """The site folder the base image installs into (found without importing anything)."""
    spec = importlib.util.find_spec("jupyterhub")
    if spec is None or not spec.submodule_search_locations:
        raise EditFailed("jupyterhub is not installed")
    return Path(next(iter(spec.submodule_search_locations))).parent


def edit(site: Path, originals: Path | None = None) -> None:
    """Apply every edit under `site`, or none (all texts are checked before anything is written);
    keep each edited file's original under `originals` if given."""
    new_texts: dict[Path, str] = {}
    for package, files in EDITS.items():
        for name, edits in files.items():
            path = site / package / name
            if not path.is_file():
                raise EditFailed(f"{package}/{name} is not installed in {site}")
            text = path.read_text()
            for old, new in edits:
                if text.count(old) != 1:
                    raise EditFailed(f"{package}/{name}: expected {old.strip()!r} once, found it "
                                     f"{text.count(old)} times (a new {package} version? revisit "
                                     f"bindery/stack/base/server_trims.py)")
                text = text.replace(old, new)
            new_texts[path] = text
    for package, files in NEW_FILES.items():
        for name, text in files.items():
            (site / package / name).write_text(text)
    for path, text in new_texts.items():
        if originals is not None:
            kept = originals / path.relative_to(site)
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, kept)
        path.write_text(text)


def undo(site: Path, originals: Path) -> list[str]:
    """Put the kept originals back (the packages as they ship); the files restored."""
    restored = []
    for kept in sorted(p for p in originals.rglob("*.py") if p.is_file()):
        name = kept.relative_to(originals)
        shutil.copy2(kept, site / name)
        restored.append(str(name))
    return restored


def deferred_loaded(site: Path) -> list[str]:
    """The deferred modules a server's start loads, in a fresh interpreter."""
    with tempfile.TemporaryDirectory(prefix="server-trims-") as home:
        env = {"PYTHONPATH": str(site), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "HOME": home, "JUPYTER_RUNTIME_DIR": home, "JUPYTER_CONFIG_DIR": home}
        result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                                timeout=120, env=env, cwd=home)
    if result.returncode != 0:
        raise EditFailed(f"a server's start failed:\n{result.stderr[-2000:]}")
    return result.stdout.split()


def compile_packages(site: Path) -> None:
    for package in EDITS:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(site / package)],
                       check=True, timeout=300)  # fmt: skip


def main(argv: list[str]) -> int:
    args = argv[1:]
    undoing = "--undo" in args
    args = [a for a in args if a != "--undo"]
    try:
        site = Path(args[0]) if args else site_dir()
        if undoing:
            restored = undo(site, ORIGINALS)
            compile_packages(site)
            print(f"server_trims: restored {len(restored)} files as they ship: {' '.join(restored)}")
            return 0
        edit(site, ORIGINALS)
        left = deferred_loaded(site)
    except EditFailed as exc:
        print(f"server_trims: {exc}", file=sys.stderr)
        return 1
    if left:
        print(f"server_trims: still loaded at a server's start: {' '.join(left)}", file=sys.stderr)
        return 1
    compile_packages(site)
    print("server_trims: a server starts without the hub's database layer, the iri grammars "
          "and aiohttp's default TLS contexts")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
