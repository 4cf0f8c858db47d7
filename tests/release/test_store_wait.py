"""The artifact store and the bounded wait for an artifact another job is still producing."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from bindery.backoff import wait_until
from bindery.artifacts.store import FolderStore, newest
from bindery.artifacts.wait import ArtifactWaitTimeout, wait_for_artifact

VERSION = "0.1.dev12+gabc123456789"


def make_wheel(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bindery-{version}-py3-none-any.whl"
    path.write_bytes(b"PK fake wheel " + version.encode())
    return path


def test_put_find_and_newest_by_pep440(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "artifacts")
    for v in ("0.1.dev9+gaaaaaaaaaaaa", "0.1.dev10+gbbbbbbbbbbbb", "0.1.dev2+gcccccccccccc"):
        store.put(make_wheel(tmp_path / "build", v), v, "f" * 40)
    assert newest(store).version == "0.1.dev10+gbbbbbbbbbbbb"  # 10 > 9 (not string order)
    found = store.find("0.1.dev9+gaaaaaaaaaaaa")
    assert found and Path(found.location).is_file() and store.verify(found)
    assert store.find("0.1.dev99+gdddddddddddd") is None
    index = (tmp_path / "artifacts" / "index.json").read_text()
    assert '"sha256"' in index and '"created"' in index and '"commit"' in index


def test_wait_returns_at_once_when_present(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    store.put(make_wheel(tmp_path / "b", VERSION), VERSION, "a" * 40)
    messages: list[str] = []
    assert wait_for_artifact(store, VERSION, timeout=5, on_progress=messages.append).version == VERSION
    assert messages == []


def test_wait_fails_at_the_bound_naming_version_and_store(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "artifacts")
    store.put(make_wheel(tmp_path / "b", "0.1.dev3+g111111111111"), "0.1.dev3+g111111111111", "1" * 40)
    messages: list[str] = []
    start = time.monotonic()
    with pytest.raises(ArtifactWaitTimeout) as err:
        wait_for_artifact(store, VERSION, timeout=0.4, interval=0.05, on_progress=messages.append)
    elapsed = time.monotonic() - start
    assert 0.4 <= elapsed < 3
    text = str(err.value)
    assert f"waiting for bindery {VERSION} wheel in {tmp_path / 'artifacts'}" in text
    assert "gave up at the bound" in text and "0.1.dev3+g111111111111" in text
    assert messages and messages[0].startswith(f"waiting for bindery {VERSION} wheel in {tmp_path / 'artifacts'} (0 s of 0 s)")


def test_wait_succeeds_when_the_artifact_appears_during_the_wait(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "artifacts")
    waiting = threading.Event()

    def producer() -> None:
        waiting.wait(10)  # the consumer said it is waiting: now publish
        FolderStore(tmp_path / "artifacts").put(make_wheel(tmp_path / "b", VERSION), VERSION, "c" * 40)

    thread = threading.Thread(target=producer)
    thread.start()
    artifact = wait_for_artifact(store, VERSION, timeout=30, interval=0.05,
                                 on_progress=lambda message: waiting.set())
    thread.join(10)
    assert artifact.version == VERSION and artifact.commit == "c" * 40
    assert store.verify(artifact)


def _publish_from_another_process(root: str, version: str, ready_path: str) -> None:
    ready = Path(ready_path)
    wait_until(ready.exists, timeout=20, interval=0.01, what="the consumer waiting")
    FolderStore(root).put(make_wheel(Path(root).parent / "proc-build", version), version, "d" * 40)


def test_wait_sees_an_artifact_published_by_another_process(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    ready = tmp_path / "consumer-waiting"
    proc = multiprocessing.get_context("spawn").Process(
        target=_publish_from_another_process, args=(str(root), VERSION, str(ready)))
    proc.start()
    try:
        artifact = wait_for_artifact(FolderStore(root), VERSION, timeout=30, interval=0.05,
                                     on_progress=lambda message: ready.touch())
    finally:
        proc.join(20)
    assert artifact.commit == "d" * 40
