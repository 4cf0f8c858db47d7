"""Build hook: give the distribution bindery's git-derived version and bake it into the wheel and sdist.

Why a setup.py: the version is computed from git (bindery/versioning.py, loaded here by path because the
isolated build environment has none of bindery's dependencies), and an installed wheel has no git to ask, so the
build writes bindery/_build_info.json into what it packages. Everything else lives in pyproject.toml.
"""

import importlib.util
import json
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent


def _version_module():
    # version.py runs git through bindery/git_commands.py (standard library only at import): make this tree importable.
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("_bindery_release_version", ROOT / "bindery/versioning.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


_V = _version_module()


def _info() -> dict:
    """From git in a checkout; from the baked file when building from an sdist or an exported tree."""
    if _V.is_checkout_root(ROOT):
        return _V.build_info(ROOT)
    info = _V.read_build_info(ROOT / "bindery")
    if not info:
        raise SystemExit("bindery: no git checkout and no bindery/_build_info.json: cannot tell the version")
    return info


INFO = _info()


def _bake(package_dir: Path) -> None:
    package_dir.mkdir(parents=True, exist_ok=True)
    (package_dir / _V.BUILD_INFO_NAME).write_text(json.dumps(INFO, indent=2) + "\n")


class BuildPy(build_py):
    def run(self):
        super().run()
        if not self.editable_mode:  # an editable install runs from the checkout and asks git
            _bake(Path(self.build_lib) / "bindery")


class SDist(sdist):
    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        _bake(Path(base_dir) / "bindery")


setup(version=INFO["version"], cmdclass={"build_py": BuildPy, "sdist": SDist})
