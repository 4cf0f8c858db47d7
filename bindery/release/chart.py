"""`bindery release --chart`: the Helm chart packaged for a release, into the artifact store beside its wheel.

Why package per release: the chart in git carries placeholder versions (``version: 0.0.0``, ``appVersion: "0.0.0"``).
Packaged here it gets the release's SemVer form as its version and the release's image tag as its appVersion, so the
chart's default image tag (``image.tag: ""`` → ``.Chart.AppVersion``) is the release's own, and a deploy of version V
installs the chart of V (bindery/deploy/helmflow.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bindery.deploy.classify import CheckFailed
from bindery.deploy.helm import run_helm
from bindery.artifacts.store import Artifact, ArtifactStore
from bindery.artifacts.tags import chart_version, image_tag

HELM_TIMEOUT = 120.0
DEFAULT_CHART = Path("helm") / "bindery"  # relative to the checkout


class ChartError(RuntimeError):
    """The chart could not be packaged; the message says why."""


def package_chart(chart: Path, version: str, commit: str, store: ArtifactStore, *, force: bool = False) -> Artifact:
    """`helm package` ``chart`` as ``version`` into ``store`` (kind "chart"), unless it is there already."""
    if not (chart / "Chart.yaml").is_file():  # a wrong path is an error even when the version's chart is there
        raise ChartError(f"{chart} is not a chart folder (no Chart.yaml)")
    existing = store.find(version, "chart")
    if existing is not None and not force:
        return existing
    with tempfile.TemporaryDirectory(prefix="bindery-chart-") as out:
        argv = ["package", str(chart), "--version", chart_version(version), "--app-version", image_tag(version),
                "--destination", out]
        try:
            run_helm(argv, "helm package", HELM_TIMEOUT)
        except CheckFailed as exc:
            raise ChartError(f"{exc.reason}\n{exc.evidence.get('output', '')}".strip()) from None
        packaged = sorted(Path(out).glob("*.tgz"))
        if len(packaged) != 1:
            raise ChartError(f"helm package wrote {[p.name for p in packaged]}, expected one .tgz")
        return store.put(packaged[0], version, commit, kind="chart")
