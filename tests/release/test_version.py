"""The version names the last commit that changed the packaged files — across merges — and nothing else moves it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from packaging.version import Version

from bindery.versioning import (
    BUILD_INFO_NAME,
    HASH_LENGTH,
    commit_of_version,
    explain,
    package_version,
    version_of,
)

from .conftest import Repo


def test_version_names_last_package_commit(repo: Repo) -> None:
    c = repo.commit("add module", {"bindery/a.py": "A = 1\n"})
    ex = explain(repo.path)
    assert ex.commit == c
    assert ex.version == f"0.1.dev2+g{c[:HASH_LENGTH]}"
    assert ex.changed_paths == ["bindery/a.py"]
    assert ex.commits_since == 0 and ex.via_merge is None
    Version(ex.version)  # valid PEP 440


def test_commits_outside_the_package_do_not_change_the_version(repo: Repo) -> None:
    repo.commit("add module", {"bindery/a.py": "A = 1\n"})
    before = version_of(repo.path)
    repo.commit("docs", {"README.md": "more\n"})
    repo.commit("tests", {"tests/test_a.py": "def test(): pass\n"})
    ex = explain(repo.path)
    assert ex.version == before
    assert ex.commits_since == 2
    assert "none of them changed the packaged files" in "\n".join(ex.lines())


def test_pyproject_is_packaged(repo: Repo) -> None:
    before = version_of(repo.path)
    c = repo.commit("deps", {"pyproject.toml": "[project]\nname = 'bindery'\ndependencies = []\n"})
    assert version_of(repo.path) != before
    assert commit_of_version(version_of(repo.path)) == c[:HASH_LENGTH]


def test_merge_bringing_package_changes_names_the_branch_commit_not_the_merge(repo: Repo) -> None:
    repo.checkout("-b", "feature")
    feature = repo.commit("feature: new launcher", {"bindery/launcher.py": "x = 1\n"})
    repo.commit("feature: tests only", {"tests/test_launcher.py": "\n"})
    repo.checkout("main")
    repo.commit("main: readme", {"README.md": "main\n"})
    merge = repo.merge("feature", "Merge branch 'feature'")
    ex = explain(repo.path)
    assert ex.commit == feature != merge
    assert ex.via_merge == merge
    assert ex.via_merge_subject == "Merge branch 'feature'"
    assert ex.content_matches_head and not ex.is_merge
    assert ex.changed_paths == ["bindery/launcher.py"]
    text = "\n".join(ex.lines())
    assert feature[:HASH_LENGTH] in text and "feature: new launcher" in text and "so the merge is not the version" in text


def test_merge_with_package_changes_on_both_sides_names_the_merge(repo: Repo) -> None:
    repo.checkout("-b", "feature")
    repo.commit("feature change", {"bindery/b.py": "b\n"})
    repo.checkout("main")
    repo.commit("main change", {"bindery/a.py": "a\n"})
    merge = repo.merge("feature", "merge both")
    ex = explain(repo.path)
    # The merged package content first exists in the merge: no other commit has it.
    assert ex.commit == merge and ex.is_merge and ex.via_merge is None
    assert ex.changed_paths == ["bindery/b.py"]  # relative to the first parent
    assert ex.content_matches_head


def test_merge_of_non_package_branch_keeps_the_version(repo: Repo) -> None:
    repo.commit("pkg", {"bindery/a.py": "a\n"})
    before = version_of(repo.path)
    repo.checkout("-b", "docs")
    repo.commit("docs", {"README.md": "docs\n"})
    repo.checkout("main")
    repo.merge("docs", "merge docs")
    assert version_of(repo.path) == before


def test_count_grows_with_each_package_change(repo: Repo) -> None:
    versions = [version_of(repo.path)]
    for i in range(3):
        repo.commit(f"docs {i}", {"README.md": f"{i}\n"})
        repo.commit(f"pkg {i}", {"bindery/a.py": f"{i}\n"})
        versions.append(version_of(repo.path))
    repo.checkout("-b", "feature")
    repo.commit("feature", {"bindery/f.py": "f\n"})
    repo.checkout("main")
    repo.merge("feature", "merge feature")
    versions.append(version_of(repo.path))
    parsed = [Version(v) for v in versions]
    assert parsed == sorted(parsed) and len(set(parsed)) == len(parsed)


def test_uncommitted_package_changes_mark_the_version_dirty(repo: Repo) -> None:
    clean = version_of(repo.path)
    repo.write({"README.md": "edited, outside the package\n"})
    assert explain(repo.path).version == clean
    repo.write({"bindery/__pycache__/x.pyc": "ignored"})
    assert explain(repo.path).version == clean
    repo.write({"bindery/new.py": "untracked\n"})
    ex = explain(repo.path)
    assert ex.version == clean.replace("+g", "+g", 1) + ".dirty"
    assert ex.dirty_paths == ["bindery/new.py"]
    Version(ex.version)


def test_installed_copy_reads_the_baked_version(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "bindery"
    package.mkdir(parents=True)
    (package / BUILD_INFO_NAME).write_text(json.dumps({"version": "0.1.dev7+gabcdef123456"}))
    assert package_version(package) == "0.1.dev7+gabcdef123456"


def test_checkout_wins_over_a_stale_baked_file(repo: Repo) -> None:
    (repo.path / "bindery" / BUILD_INFO_NAME).write_text(json.dumps({"version": "9.9"}))
    repo.write({".gitignore": f"__pycache__/\nbindery/{BUILD_INFO_NAME}\n"})
    repo.commit("ignore build info", {".gitignore": f"__pycache__/\nbindery/{BUILD_INFO_NAME}\n"})
    assert package_version(repo.path / "bindery") == version_of(repo.path)


def test_cli_explain_json_names_the_commit(repo: Repo) -> None:
    repo.checkout("-b", "feature")
    feature = repo.commit("feature", {"bindery/x.py": "x\n"})
    repo.checkout("main")
    repo.merge("feature", "merge")
    out = subprocess.run([sys.executable, "-m", "bindery", "version", "--explain", "--json", "--repo",
                          str(repo.path)], capture_output=True, text=True, timeout=60, check=True).stdout
    data = json.loads(out)
    assert data["commit"] == feature and data["via_merge"] == repo.head()
    plain = subprocess.run([sys.executable, "-m", "bindery", "version", "--repo", str(repo.path)],
                           capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert plain == data["version"]


def test_running_bindery_reports_the_derived_version() -> None:
    import bindery._version as v
    from bindery.versioning import PACKAGE_DIR, explain as ex

    assert v.__version__ == ex(PACKAGE_DIR.parent).version
    assert v.__version__ is v.__version__  # cached: one computation
