"""A store's bytes are measured again when du printed no sum (a folder on its way vanished while
it walked: an image layer being removed), and the failure names du's words after the last try.
The vanishing is simulated by one empty answer; every measurement is the real du's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bindery import process_runner
from bindery.storage import disk_use


def test_a_walk_that_printed_no_sum_is_walked_again(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "layer").write_bytes(b"x" * 100_000)
    real = process_runner.run
    answers = iter([subprocess.CompletedProcess(["du"], 1, "", "du: fts_read failed: overlay: "
                                                "No such file or directory")])

    def run(argv, **kwargs):
        return next(answers, None) or real(argv, **kwargs)

    monkeypatch.setattr(process_runner, "run", run)
    assert disk_use.folder_bytes(tmp_path) >= 100_000


def test_a_walk_that_never_prints_a_sum_fails_naming_why(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(process_runner, "run", lambda argv, **kwargs: subprocess.CompletedProcess(
        argv, 1, "", "du: fts_read failed: gone"))
    with pytest.raises(OSError, match="failed 3 times .*fts_read failed: gone"):
        disk_use.folder_bytes(tmp_path)
