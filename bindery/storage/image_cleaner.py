"""Keep an engine's image store under its budget: BinderHub's image-cleaner, per store.

When the store's use passes its high mark, images that no container uses are removed, least
recently used first, until use is under the low mark. Untagged images (left behind when a tag
moved) go before tagged ones. Never removed: images a container uses (running servers, warm pools,
a build), the protected names (the stack's base and build images), anything outside bindery's own
repository prefix, and images used within the grace period (a launch may be pulling one right now).

"Used" is when a launch last asked for the image (recorded by the pipeline) or a pass last saw a
container of it; an image neither ever touched counts from its creation.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from bindery.storage.disk_use import Budget, folder_bytes

log = logging.getLogger(__name__)


@dataclass
class CleanPass:
    store: str
    before: int  # bytes when the pass began
    after: int  # ...and when it ended
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    collect_seconds: float = 0.0  # of ``seconds``, the registry's garbage collection

    @property
    def reclaimed(self) -> int:
        return max(0, self.before - self.after)


@dataclass(frozen=True)
class Candidate:
    id: str
    tags: tuple[str, ...]  # its names: repo:tag and repo@digest
    last_used: float


class ImageCleaner:
    def __init__(self, store: str, client: docker.DockerClient, folder: Path, budget: Budget,
                 prefix: str, protected: Iterable[str], grace: float = 600.0,
                 measure: Callable[[Path], int] = folder_bytes) -> None:
        self.store = store  # "run" or "build": the name metrics and logs use
        self.client = client
        self.folder = folder  # the store's folder on disk
        self.budget = budget
        self.prefix = prefix  # <registry host>/<image prefix>: bindery's own images
        self.protected = set(protected)
        self.grace = grace
        self.measure = measure

    def candidates(self, used_at: dict[str, float], now: float) -> list[Candidate]:
        """Images this pass may remove, in the order it removes them."""
        in_use = {c.get("ImageID") or c.get("Image") for c in self.client.api.containers(all=True)}
        out = []
        for image in self.client.api.images():
            # an image launched by digest has no tag on the run side, only its repo@sha256 name
            tags = tuple(t for t in [*(image.get("RepoTags") or ()), *(image.get("RepoDigests") or ())]
                         if not t.startswith("<none>"))
            image_id = image["Id"]
            if image_id in in_use or image_id.removeprefix("sha256:") in in_use:
                continue
            if any(t in self.protected or not t.startswith(self.prefix) for t in tags):
                continue
            recorded = [used_at[t] for t in tags if t in used_at]
            last = max(recorded) if recorded else float(image.get("Created") or 0)
            if tags and now - last < self.grace:
                continue
            out.append(Candidate(image_id, tags, last))
        # untagged leftovers first (BinderHub's order), then least recently used
        return sorted(out, key=lambda c: (bool(c.tags), c.last_used))

    def clean(self, used_at: dict[str, float]) -> CleanPass:
        """One pass: nothing below the high mark; above it, remove until under the low mark."""
        started = time.monotonic()
        used = self.measure(self.folder)
        result = CleanPass(self.store, used, used)
        if used > self.budget.high:
            for candidate in self.candidates(used_at, time.time()):
                if used <= self.budget.low:
                    break
                if self._remove(candidate):
                    result.removed.append(candidate.tags[0] if candidate.tags else candidate.id)
                    used = self.measure(self.folder)
            result.after = used
        result.seconds = time.monotonic() - started
        if result.removed or used > self.budget.high:
            log.log(logging.INFO if used <= self.budget.high else logging.WARNING,
                    "%s store: %d images removed, %d bytes reclaimed, %d of %d bytes used",
                    self.store, len(result.removed), result.reclaimed, used, self.budget.bytes,
                    extra={"store": self.store, "reclaimed": result.reclaimed, "used": used,
                           "budget": self.budget.bytes, "removed": result.removed[:50]})
        return result

    def _remove(self, candidate: Candidate) -> bool:
        try:
            for tag in candidate.tags:  # untag first: an id with several names is refused
                if "@" not in tag:
                    with contextlib.suppress(docker.errors.NotFound):
                        self.client.api.remove_image(tag, noprune=False)
            self.client.api.remove_image(candidate.id, noprune=False)  # what is left: digests
        except docker.errors.NotFound:
            return True  # gone already (another pass, or a container's removal pruned it)
        except docker.errors.APIError as exc:  # a container took it since the listing: keep it
            log.info("%s store: kept %s (%s)", self.store, candidate.tags or candidate.id,
                     _reason(exc))
            return False
        return True


def _reason(exc: Any) -> str:
    return str(getattr(exc, "explanation", None) or exc)[:300]
