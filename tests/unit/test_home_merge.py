"""The merge of a repository's files into a home follows nbgitpuller's rules (bindery/home_merge.py),
run as the container runs it: `python3 -c <source> SOURCE HOME` in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bindery import home_merge
from bindery.home_merge import MANIFEST, merge


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def run_script(source: Path, home: Path, *flags: str) -> subprocess.CompletedProcess:
    code = Path(home_merge.__file__).read_text()
    return subprocess.run([sys.executable, "-I", "-c", code, *flags, str(source), str(home)],
                          capture_output=True, text=True, timeout=60)


def test_first_merge_adds_everything_and_records_a_manifest(tmp_path):
    repo, home = tmp_path / "repo", tmp_path / "home"
    home.mkdir()
    write(repo, {"a.ipynb": "A1", "data/b.csv": "B1"})
    done = run_script(repo, home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["added"] == 2
    assert (home / "data/b.csv").read_text() == "B1"
    assert set(json.loads((home / MANIFEST).read_text())["files"]) == {"a.ipynb", "data/b.csv"}


def test_the_persons_edit_wins_and_unmodified_files_are_updated(tmp_path):
    repo, home = tmp_path / "repo", tmp_path / "home"
    home.mkdir()
    write(repo, {"edited.py": "v1", "untouched.py": "v1", "deleted_same.py": "v1",
                 "deleted_changed.py": "v1", "gone_upstream.py": "v1"})
    merge(repo, home)
    # the person works: edits one file, deletes two, makes one of their own
    write(home, {"edited.py": "mine", "mine.txt": "notes"})
    (home / "deleted_same.py").unlink()
    (home / "deleted_changed.py").unlink()
    # the repository moves on: changes every file, adds one, drops one
    (repo / "gone_upstream.py").unlink()
    write(repo, {"edited.py": "v2", "untouched.py": "v2", "deleted_changed.py": "v2",
                 "deleted_same.py": "v1", "new.py": "v2"})
    report = merge(repo, home)
    assert (home / "edited.py").read_text() == "mine"  # the person's change wins
    assert (home / "untouched.py").read_text() == "v2"  # unmodified: the repository's new version
    assert (home / "new.py").read_text() == "v2"  # new in the repository: added
    assert (home / "deleted_changed.py").read_text() == "v2"  # deleted, but changed: back
    assert not (home / "deleted_same.py").exists()  # deleted, unchanged upstream: stays deleted
    assert not (home / "gone_upstream.py").exists()  # dropped upstream, unmodified here: removed
    assert (home / "mine.txt").read_text() == "notes"
    assert report["kept"] == ["edited.py"] and report["restored"] == ["deleted_changed.py"]
    # a third launch still knows the edit is the person's (judged against the old version)
    write(repo, {"edited.py": "v3"})
    merge(repo, home)
    assert (home / "edited.py").read_text() == "mine"


def test_a_persons_file_the_repository_now_also_has_is_kept_under_a_new_name(tmp_path):
    repo, home = tmp_path / "repo", tmp_path / "home"
    home.mkdir()
    write(repo, {"a.py": "1"})
    merge(repo, home)
    write(home, {"notes.md": "mine"})
    write(repo, {"notes.md": "theirs"})
    report = merge(repo, home, now=0.0)
    assert report["renamed"] == ["notes.md"]
    assert (home / "notes.md").read_text() == "theirs"
    assert (home / "notes_19700101000000.md").read_text() == "mine"


def test_a_new_homes_manifest_is_the_images_and_a_later_merge_judges_by_it(tmp_path):
    """A new home is filled by the engine's copy of the image's home; its manifest, written after
    the server started, lists the image's files even when the person already edited one."""
    repo, home = tmp_path / "repo", tmp_path / "home"
    write(repo, {"notes.md": "v1", "data.txt": "d1", "sub/x.py": "x1"})
    write(home, {"notes.md": "my edit", "data.txt": "d1", "sub/x.py": "x1"})  # copied, then edited
    done = run_script(repo, home, "--manifest")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["listed"] == 3
    listed = json.loads((home / MANIFEST).read_text())["files"]
    assert listed["notes.md"] == home_merge.file_hash(repo / "notes.md")  # the image's, not mine
    assert (home / "notes.md").read_text() == "my edit"  # only the manifest was written
    write(repo, {"notes.md": "v2", "data.txt": "d2"})  # the repository moves on
    assert run_script(repo, home).returncode == 0
    assert (home / "notes.md").read_text() == "my edit"  # the person's edit survives
    assert (home / "data.txt").read_text() == "d2"  # unchanged by the person: updated
    assert not list(home.glob("notes_*"))  # judged as the person's edit, not an unknown file
