"""conda package specs as PyPI requirements: what an environment.yml means where no conda channel is.

conda and PyPI mostly share names; where they do not, ``RENAMES`` holds the common ones (a conda
package → its PyPI project) and ``NOT_PYTHON`` the conda packages that are libraries, compilers or
runtimes with no PyPI counterpart (they are left out and said so). A conda version (``=1.2`` is
conda's "1.2.*"; ``1.2.3=py37_0`` carries a build string, which has no PyPI meaning) becomes the
nearest PEP 440 specifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bindery.builds.buildpacks.package_index import normal

# conda-forge / defaults name → PyPI project, for packages whose names differ.
RENAMES = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "torchvision-cpu": "torchvision",
    "py-opencv": "opencv-python-headless",
    "opencv": "opencv-python-headless",
    "libopencv": "opencv-python-headless",
    "matplotlib-base": "matplotlib",
    "pytables": "tables",
    "python-graphviz": "graphviz",
    "msgpack-python": "msgpack",
    "dask-core": "dask",
    "numpy-base": "numpy",
    "pyqt": "PyQt5",
    "py-xgboost": "xgboost",
    "py-lightgbm": "lightgbm",
    "ruamel_yaml": "ruamel.yaml",
        "yaml": "PyYAML",
    "proj4": "pyproj",
}

# conda packages that are not Python distributions (libraries, toolchains, runtimes, meta-packages).
NOT_PYTHON = {
    "python", "pip", "conda", "mamba", "nodejs", "r-base", "r", "git", "make", "cmake",
    "compilers", "gcc", "gxx", "gfortran", "c-compiler", "cxx-compiler", "fortran-compiler",
    "libgcc", "libgcc-ng", "libstdcxx-ng", "libgfortran", "mkl", "mkl-service", "blas", "libblas",
    "liblapack", "openblas", "libopenblas", "cudatoolkit", "cudnn", "cuda", "nccl", "tbb", "hdf5",
    "libnetcdf", "netcdf-fortran", "geos", "proj", "libgdal", "zlib", "openssl", "ca-certificates",
    "certifi-conda", "qt", "tk", "libffi", "sqlite", "xz", "bzip2", "ncurses", "readline", "ffmpeg",
    "graphviz", "pandoc", "texlive-core", "nb_conda_kernels", "nb_conda", "conda-build", "anaconda",
    "_libgcc_mutex", "openjdk", "julia", "libiconv", "icu", "cairo", "pango", "glib", "freetype",
    "libpng", "jpeg", "libtiff", "curl", "libcurl", "krb5", "vim", "nano",
}

# "channel::name", name, then an optional version (conda's "=", "==", ">=", ... or a bare
# "1.2 py37_0" as conda's match spec allows), then an optional build string.
SPEC = re.compile(
    r"\s*(?:[\w.\-]+::)?(?P<name>[A-Za-z0-9_.\-]+)\s*"
    r"(?:(?P<op>==|>=|<=|!=|=|>|<|~=)?\s*(?P<version>[^\s=\[]+)?)?"
    r"(?:\s*=\s*|\s+)?(?P<build>[^\s\[]+)?\s*(?:\[.*\])?\s*")


@dataclass(frozen=True)
class Translated:
    conda: str  # the spec as written
    name: str  # conda name
    pypi: str  # its PyPI project ("" when left out)
    requirement: str  # PEP 508 requirement ("" when left out)
    change: str  # what differs from the conda spec, for the notice ("" when nothing)


def conda_name(spec: str) -> str:
    match = SPEC.fullmatch(spec)
    return (match.group("name") if match else spec.strip()).lower()


def _version_spec(op: str | None, version: str | None) -> str:
    """conda's version constraint as a PEP 440 specifier ("" for any version)."""
    if not version or version == "*":
        return ""
    parts = [p for p in version.split(",") if p]
    out = []
    for i, part in enumerate(parts):
        part_op = op if i == 0 else ""
        m = re.fullmatch(r"(==|>=|<=|!=|=|>|<|~=)?(.+)", part)
        if m is None:
            continue
        part_op = m.group(1) or part_op or "="
        value = m.group(2).split("|")[0]  # conda's "a|b": the first alternative
        if part_op == "=":  # conda's fuzzy pin: 1.26 means 1.26.*
            out.append(f"=={value}" if value.endswith("*") else f"=={value}.*")
        else:
            out.append(f"{part_op}{value}")
    return ",".join(out)


def translate(spec: str) -> Translated:
    """A conda dependency (a string from environment.yml) as a PyPI requirement."""
    match = SPEC.fullmatch(spec)
    if match is None:
        return Translated(spec, spec, "", "", "not a conda package spec this service can read")
    name = match.group("name")
    key = name.lower()
    if key in NOT_PYTHON or RENAMES.get(key) == "":
        return Translated(spec, key, "", "", "not a Python package (no PyPI counterpart here)")
    if key.startswith("r-"):
        return Translated(spec, key, "", "", "an R package (not installed by a Python environment)")
    pypi = RENAMES.get(key, name)
    op, version, build = match.group("op"), match.group("version"), match.group("build")
    if version and not op and not re.match(r"[\d*]", version):
        version, build = None, version  # "name build" without a version
    requirement = pypi + _version_spec(op, version)
    changes = []
    if normal(pypi) != normal(key):
        changes.append(f"installed as {pypi} (its PyPI name)")
    if build and build != "*":
        changes.append(f"conda build '{build}' dropped")
    return Translated(spec, key, pypi, requirement, "; ".join(changes))
