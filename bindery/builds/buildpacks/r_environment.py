"""R repositories (install.R, DESCRIPTION, runtime.txt r-...) from Debian's R and r-cran-* packages.

repo2docker builds R from Posit's package manager (a dated CRAN snapshot); here only the Debian
mirror is reachable, and Debian ships R (``r-base-core``), the Jupyter R kernel (``r-cran-irkernel``)
and about 1,100 CRAN packages as ``r-cran-<name in lower case>`` (their names for this suite are in
``r_cran_bookworm.txt``, taken from the mirror with ``apt-cache pkgnames r-cran-``). So:

- the packages install.R asks for (``install.packages(...)``, ``library(...)``, ``require(...)``)
  and a DESCRIPTION's Depends/Imports become Debian packages; install.R itself is not run (it
  would download from CRAN, which cannot be reached); the ones Debian lacks are listed in the
  notice, as is R's version when runtime.txt asks for another;
- a DESCRIPTION at the top is installed as a package (``R CMD INSTALL .``) after the repository is
  copied, as repo2docker does;
- everything of a Python repository (requirements.txt, apt.txt, postBuild, ...) works alongside.
"""

from __future__ import annotations

import os
import re
from functools import cached_property

from bindery.builds.buildpacks.base import UID, guarded
from bindery.builds.buildpacks.python import PythonBuildPack
from bindery.builds.buildpacks.runtime import read_runtime

DEBIAN_R = "4.2"  # r-base-core in bookworm (4.2.2)
R_LIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "r_cran_bookworm.txt")
# Packages that come with R itself (r-base-core): nothing to install for them.
BASE_PACKAGES = {"base", "compiler", "datasets", "graphics", "grDevices", "grid", "methods",
                 "parallel", "splines", "stats", "stats4", "tcltk", "tools", "utils", "R"}
CALL = re.compile(r"\b(install\.packages|library|require|requireNamespace|p_load)\s*\(([^()]*"
                  r"(?:\([^()]*\)[^()]*)*)\)", re.S)
NAME = re.compile(r"[A-Za-z][A-Za-z0-9.]*")
RUNTIME_R = re.compile(r"r-(?:(\d+\.\d+)(?:\.\d+)?-)?(\d{4}-\d{2}-\d{2})")
SITE_LIBRARY = "/usr/local/lib/R/site-library"


def debian_r_packages() -> set[str]:
    with open(R_LIST, encoding="utf-8") as f:
        return {line.strip() for line in f if line.strip()}


def packages_in_script(text: str) -> list[str]:
    """R package names an R script installs or loads (in order, once each)."""
    text = re.sub(r"#[^\n]*", "", text)  # comments
    found: list[str] = []
    for function, args in CALL.findall(text):
        first = args.split("repos")[0].split("dependencies")[0]
        if function in ("library", "require", "requireNamespace"):
            first = first.split(",")[0]  # library(x, character.only = ...): its first argument
        quoted = re.findall(r"[\"']([A-Za-z][A-Za-z0-9.]*)[\"']", first)
        names = quoted or ([first.strip()] if NAME.fullmatch(first.strip()) else [])
        for name in names:
            if name not in found:
                found.append(name)
    return found


def packages_in_description(text: str) -> list[str]:
    """The Depends and Imports of an R package's DESCRIPTION."""
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line[:1].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            fields[key] = value.strip()
    names = []
    for field in ("Depends", "Imports", "LinkingTo"):
        for item in fields.get(field, "").split(","):
            name = re.sub(r"\(.*?\)", "", item).strip()
            if NAME.fullmatch(name) and name not in names:
                names.append(name)
    return names


class RBuildPack(PythonBuildPack):
    def _runtime(self) -> str:
        line = read_runtime(self.binder_path("runtime.txt"))
        return line if line.startswith("r-") else ""

    def _description(self) -> str:
        """DESCRIPTION, read only at the top and without a binder folder (as repo2docker)."""
        return "DESCRIPTION" if not self.binder_dir and os.path.exists("DESCRIPTION") else ""

    def _install_r(self) -> str:
        path = self.binder_path("install.R")
        return path if os.path.exists(path) else ""

    def detect(self) -> bool:
        return bool(self._runtime() or self._install_r() or self._description())

    def requested_python(self) -> tuple[str, str]:
        return "", ""  # runtime.txt names R here; Python is the base image's

    @cached_property
    def r_packages(self) -> tuple[list[str], list[str], list[str]]:
        """(Debian packages to install, R packages Debian lacks, R packages asked for)."""
        asked: list[str] = []
        for path, reader in ((self._install_r(), packages_in_script),
                             (self._description(), packages_in_description)):
            if path:
                with open(path, encoding="utf-8", errors="replace") as f:
                    asked += [n for n in reader(f.read()) if n not in asked]
        have = debian_r_packages()
        debian, missing = [], []
        for name in asked:
            if name in BASE_PACKAGES:
                continue
            (debian if name.lower() in have else missing).append(name)
        return [f"r-cran-{n.lower()}" for n in debian], missing, asked

    def root_scripts(self) -> list[str]:
        debian, missing, _ = self.r_packages
        source = self._install_r() or self._description() or self.binder_path("runtime.txt")
        runtime = self._runtime()
        match = RUNTIME_R.fullmatch(runtime) if runtime else None
        if runtime and (match is None or (match.group(1) and match.group(1) != DEBIAN_R)):
            asked = (f"R {match.group(1)} as of {match.group(2)}" if match and match.group(1)
                     else f"'{runtime}'")
            self.notice(f"{self.binder_path('runtime.txt')} asks for {asked}; this service "
                        f"builds R from its Debian mirror: R {DEBIAN_R} with Debian's packages")
        elif match:
            self.notice(f"{self.binder_path('runtime.txt')} asks for CRAN as of "
                        f"{match.group(2)}; R packages come from the Debian mirror instead "
                        "(their Debian versions)")
        if self._install_r():
            self.notice(f"{self._install_r()} was not run (it downloads from CRAN, which this "
                        "service cannot reach); the packages it names were installed from "
                        f"Debian: {', '.join(debian) or 'none'}")
        if missing:
            self.notice(f"{source}: these R packages are not in Debian and were NOT installed: "
                        f"{', '.join(missing)}")
        packages = " ".join(["r-base-core", "r-cran-irkernel", *debian])
        return [guarded(
            f"apt-get -qq update && apt-get install --yes --no-install-recommends {packages} && "
            f"apt-get -qq clean && rm -rf /var/lib/apt/lists/* && install -d -o {UID} -g {UID} "
            f"{SITE_LIBRARY} && chown {UID}:{UID} {SITE_LIBRARY}", source)]

    def dependency_scripts(self) -> list[str]:
        # the R kernel beside the Python one, in the server's environment (jovyan owns it)
        return [guarded("Rscript -e 'IRkernel::installspec(sys_prefix = TRUE)'",
                        self._install_r() or self._description() or "runtime.txt"),
                *super().dependency_scripts()]

    def assemble_scripts(self) -> list[str]:
        scripts = super().assemble_scripts()
        if self._description():
            scripts.append(guarded(f"R CMD INSTALL --library={SITE_LIBRARY} .", "DESCRIPTION"))
        return scripts
