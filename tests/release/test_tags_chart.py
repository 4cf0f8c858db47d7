"""Image tags and chart versions from release versions, and the chart packaged with them by real helm."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bindery.deploy.helm import run_helm
from bindery.release.chart import ChartError, package_chart
from bindery.artifacts.store import FolderStore
from bindery.artifacts.tags import OCI_TAG, VersionNameError, chart_version, image_tag, version_of_tag

CHART = Path(__file__).parents[1] / "deploy" / "tinychart"
V = "0.1.dev42+g1a2b3c4d5e6f"


@pytest.mark.parametrize(("version", "tag", "semver"), [
    (V, "0.1.dev42-g1a2b3c4d5e6f", "0.1.0-dev.42+g1a2b3c4d5e6f"),
    ("0.1", "0.1", "0.1.0"),
    ("1.2.3rc1", "1.2.3rc1", "1.2.3-rc.1"),
    ("0.1.dev0+unknown", "0.1.dev0-unknown", "0.1.0-dev.0+unknown"),
])
def test_image_tag_and_chart_version(version: str, tag: str, semver: str) -> None:
    assert image_tag(version) == tag and OCI_TAG.fullmatch(tag)
    assert version_of_tag(tag) == version  # one to one: the tag names its version
    assert chart_version(version) == semver


@pytest.mark.parametrize("bad", ["0.1.dev3+gabc.dirty", "not a version", "1!2.0", "0.1.post1"])
def test_versions_without_a_release_name_are_refused(bad: str) -> None:
    with pytest.raises(VersionNameError):
        image_tag(bad) if "dirty" in bad or " " in bad else chart_version(bad)


def test_chart_packaged_with_release_version_and_image_tag(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "artifacts")
    artifact = package_chart(CHART, V, "c" * 40, store)
    assert artifact.kind == "chart" and artifact.filename == "tinychart-0.1.0-dev.42+g1a2b3c4d5e6f.tgz"
    shown = yaml.safe_load(run_helm(["show", "chart", artifact.location], "helm show chart", 60))
    assert shown["version"] == "0.1.0-dev.42+g1a2b3c4d5e6f"
    assert shown["appVersion"] == "0.1.dev42-g1a2b3c4d5e6f"
    # the chart's default image tag is the release's own (image.tag "" -> .Chart.AppVersion)
    rendered = run_helm(["template", "r", artifact.location], "helm template", 60)
    assert "bindery/bindery:0.1.dev42-g1a2b3c4d5e6f" in rendered
    # a chart sits beside the wheel of the same version, neither replaces the other
    assert store.find(V, "chart") == artifact and store.find(V) is None and store.list() == []
    assert package_chart(CHART, V, "c" * 40, store) == artifact  # already there: not packaged again
    with pytest.raises(ChartError, match="not a chart folder"):
        package_chart(tmp_path, "0.1.dev43+gabcdefabcdef", "c" * 40, store)
