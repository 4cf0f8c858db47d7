"""Instance files, promotion only of versions verified green, bump commits listing the commits between."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bindery.deploy import instances, verdicts as records
from bindery.deploy.bump import BumpRefused, bump
from bindery.deploy.promote import PromotionRefused, promote
from bindery.deploy.report import Report
from bindery.artifacts.store import FolderStore
from bindery.versioning import version_of

from ..release.conftest import Repo

STAGING = '''# staging: verified first
version = "{version}"  # set by bump
public_port = 9585
backend_ports = [19585, 19586]
canary = "git/canary/HEAD"

[settings]
data_dir = "/srv/bindery/staging"
hub_port = 18081
version = "not-this-one"
'''
PROD = '''version = "{version}"
public_port = 8585
backend_ports = [18585, 18586]
canary = "git/canary/HEAD"

[settings]
data_dir = "/srv/bindery/prod"
hub_port = 8081
'''


def git(path: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()


@pytest.fixture
def deploy_dir(tmp_path: Path) -> Path:
    d = tmp_path / "deploy"
    d.mkdir()
    (d / "staging.toml").write_text(STAGING.format(version="0.1.dev1+g000000000001"))
    (d / "prod.toml").write_text(PROD.format(version="0.1.dev1+g000000000001"))
    git(d, "init", "-q")
    git(d, "add", ".")
    git(d, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "instances")
    return d


def verdict(deploy_dir: Path, instance: str, version: str, green: bool) -> None:
    r = Report(instance, "deploy", version)
    if not green:
        from bindery.deploy.flow import failed_check
        r.add(failed_check("canary launch", "launch failed: spawn not followed"))
    records.append(deploy_dir, r.finish(green))


def test_instances_load_and_do_not_clash(deploy_dir: Path) -> None:
    configs = instances.load_all(deploy_dir)
    assert [c.name for c in configs] == ["prod", "staging"]
    staging = instances.load(deploy_dir, "staging")
    env = staging.env(19586)
    assert env["BINDERY_PORT"] == "19586" and env["BINDERY_DATA_DIR"] == "/srv/bindery/staging"
    assert env["BINDERY_PUBLIC_URL"] == "http://127.0.0.1:9585/"
    # the front proxy reaches slots from 127.0.0.1 and is the one proxy whose X-Forwarded-For counts
    assert env["BINDERY_TRUSTED_PROXIES"] == '["127.0.0.1/32"]'


def test_clashing_instances_are_refused(deploy_dir: Path) -> None:
    (deploy_dir / "prod.toml").write_text(PROD.format(version="x").replace("hub_port = 8081", "hub_port = 18081"))
    with pytest.raises(instances.ConfigError, match="both use port 18081"):
        instances.load_all(deploy_dir)


def test_set_version_touches_only_the_top_level_line(deploy_dir: Path) -> None:
    instances.set_version(deploy_dir, "staging", "0.1.dev7+gabcabcabcabc")
    text = (deploy_dir / "staging.toml").read_text()
    assert 'version = "0.1.dev7+gabcabcabcabc"  # set by bump' in text and 'version = "not-this-one"' in text
    assert git(deploy_dir, "diff", "--numstat").split()[:2] == ["1", "1"]


def test_promote_refuses_unverified_and_red(deploy_dir: Path) -> None:
    v = "0.1.dev5+gbbbbbbbbbbbb"
    instances.set_version(deploy_dir, "staging", v)
    with pytest.raises(PromotionRefused, match="staging never verified it"):
        promote(deploy_dir, "staging", "prod")
    verdict(deploy_dir, "staging", v, green=True)
    verdict(deploy_dir, "staging", v, green=False)  # a later red overrides
    with pytest.raises(PromotionRefused, match=r"was red at .*canary launch — real: launch failed"):
        promote(deploy_dir, "staging", "prod")
    assert instances.load(deploy_dir, "prod").version == "0.1.dev1+g000000000001"


def test_promote_green_commits_the_version(deploy_dir: Path) -> None:
    v = "0.1.dev5+gbbbbbbbbbbbb"
    instances.set_version(deploy_dir, "staging", v)
    verdict(deploy_dir, "staging", v, green=True)
    result = promote(deploy_dir, "staging", "prod")
    assert instances.load(deploy_dir, "prod").version == v and result.deploy_commit
    assert git(deploy_dir, "log", "-1", "--format=%s").startswith(f"promote {v} from staging to prod")
    assert git(deploy_dir, "show", "--name-only", "--format=", "HEAD") == "prod.toml"


def test_bump_to_newest_release_lists_commits_between(deploy_dir: Path, tmp_path: Path) -> None:
    src = Repo(tmp_path / "bindery-src")
    src.commit("package", {"bindery/__init__.py": "", "pyproject.toml": "[project]\n"})
    old = version_of(src.path)
    src.commit("fix launcher follow", {"bindery/launch.py": "x\n"})
    src.commit("docs only", {"README.md": "d\n"})
    src.commit("add canary", {"bindery/canary.py": "c\n"})
    new = version_of(src.path)
    store = FolderStore(tmp_path / "artifacts")
    for v in (old, new):
        wheel = tmp_path / "w" / f"bindery-{v}-py3-none-any.whl"
        wheel.parent.mkdir(exist_ok=True)
        wheel.write_bytes(b"w")
        store.put(wheel, v, "0" * 40)
    instances.set_version(deploy_dir, "staging", old)
    result = bump(deploy_dir, "staging", store, src.path)
    assert result.new == new and instances.load(deploy_dir, "staging").version == new
    msg = git(deploy_dir, "log", "-1", "--format=%B")
    assert msg.splitlines()[0] == f"bump staging: {old} → {new}"
    assert [line.split(" ", 2)[2] for line in msg.splitlines() if line.startswith("- ")] == [
        "add canary", "docs only", "fix launcher follow"]
    again = bump(deploy_dir, "staging", store, src.path)
    assert again.deploy_commit is None and "already at the newest" in again.message


def test_bump_refuses_empty_store_and_downgrade(deploy_dir: Path, tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "artifacts")
    with pytest.raises(BumpRefused, match="no released version"):
        bump(deploy_dir, "staging", store)
    wheel = tmp_path / "w.whl"
    wheel.write_bytes(b"w")
    store.put(wheel, "0.1.dev0+g000000000000", "0" * 40)
    with pytest.raises(BumpRefused, match="older than"):
        bump(deploy_dir, "staging", store)


def test_deploy_refuses_instances_that_clash(tmp_path) -> None:  # noqa: ANN001
    import argparse

    from bindery.deploy.commands import cmd_deploy

    for name in ("staging", "prod"):
        (tmp_path / f"{name}.toml").write_text(
            f'version = "0.1.dev1+gaaaaaaaaaaaa"\npublic_port = 9585\nbackend_ports = [1, 2]\n'
            f'[settings]\ndata_dir = "/srv/{name}"\n')
    args = argparse.Namespace(deploy_dir=tmp_path, store=tmp_path / "store", instance="staging",
                              artifact_timeout=1.0, json=False)
    assert cmd_deploy(args) == 2  # nothing was started: the clash is named before any stage
    assert not (tmp_path / "state").exists()
