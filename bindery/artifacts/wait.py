"""Waiting for an artifact that another job is still producing — bounded, and saying what it waits for.

Why: a deploy once started before its artifact was published and died with a cryptic resolver error. Here a deploy
waits for exactly the version it will install, reports "waiting for bindery V wheel in STORE (12 s of 120 s)" while
it waits, and at the bound fails with that same sentence plus what the store does hold.

The producer is external (a release job, possibly another machine writing to a shared folder), so this polls the
store at a short bounded interval; the pause uses an Event so a caller can cancel the wait at once.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from bindery.artifacts.store import Artifact, ArtifactStore, newest


class ArtifactWaitTimeout(TimeoutError):
    """The artifact did not appear within the bound; the message says what, where, and what is there instead."""


def waiting_message(version: str, store: ArtifactStore, waited: float, timeout: float, kind: str = "wheel") -> str:
    return f"waiting for bindery {version} {kind} in {store.location} ({waited:.0f} s of {timeout:.0f} s)"


def wait_for_artifact(
    store: ArtifactStore,
    version: str,
    timeout: float,
    *,
    interval: float = 1.0,
    report_every: float = 10.0,
    on_progress: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    kind: str = "wheel",
) -> Artifact:
    """Return the artifact of ``version`` once ``store`` has it; raise ArtifactWaitTimeout after ``timeout`` s.

    ``on_progress`` receives the waiting message when the wait starts (if the artifact is not already there) and
    then every ``report_every`` seconds.
    """
    found = store.find(version, kind)
    if found is not None:
        return found
    pause = cancel or threading.Event()
    start = time.monotonic()
    last_report = None
    while True:
        waited = time.monotonic() - start
        if on_progress and (last_report is None or waited - last_report >= report_every):
            last_report = waited
            on_progress(waiting_message(version, store, waited, timeout, kind))
        found = store.find(version, kind)
        if found is not None:
            return found
        if waited >= timeout:
            break
        if pause.wait(min(interval, max(timeout - waited, 0.0))) and cancel is not None:
            raise ArtifactWaitTimeout(waiting_message(version, store, waited, timeout, kind) + ": cancelled")
    there = newest(store)
    held = f"newest there is {there.version} (commit {there.commit[:12]})" if there else "the store is empty"
    raise ArtifactWaitTimeout(
        f"{waiting_message(version, store, timeout, timeout, kind)}: gave up at the bound; {held}. "
        f"Run `bindery release` on the commit the version names, or check the release job."
    )
