"""Keep the embedded registry under its byte budget: delete images least recently launched first,
then reclaim their blobs with the registry's own garbage collector.

Over the high mark, a pass lists every manifest the registry holds (catalog, tags, manifests:
the OCI distribution API with bindery's pusher credential), counts which manifests reference each
blob, and deletes bindery's images (DELETE by digest, which also removes the tags naming it) in
order of last launch until the bytes their deletion frees (blobs no remaining manifest references)
bring the use under the low mark. Never deleted: anything outside bindery's repository prefix, a
protected image (the base and build images, warm pools' images, images of running servers and of
builds in progress: by tag or by digest), and images launched (or, never launched, pushed) within
the grace period. Deleting a
manifest frees nothing on disk by itself; ``garbage-collect`` does, afterwards (the keeper runs it).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import httpx

from bindery.registry_client import MANIFEST_HEADERS
from bindery.storage.disk_use import Budget, folder_bytes

log = logging.getLogger(__name__)

PAGE = 1000  # repositories per catalog page
MAX_PAGES = 1000  # a catalog is read in at most this many pages


@dataclass(frozen=True)
class Manifest:
    repo: str  # repository inside the registry, e.g. bindery/abc-123
    digest: str
    tags: tuple[str, ...]
    blobs: dict[str, int]  # digest -> size of each blob it references (config, layers)

    def names(self, host: str) -> list[str]:
        """The image names a launch or a record may use for it: host/repo:tag and host/repo@digest."""
        return [f"{host}/{self.repo}:{t}" for t in self.tags] + [f"{host}/{self.repo}@{self.digest}"]


@dataclass
class Plan:
    used: int  # bytes on disk when the pass began
    manifests: list[Manifest] = field(default_factory=list)
    victims: list[Manifest] = field(default_factory=list)  # to delete, in this order
    freed: int = 0  # bytes of blobs that no manifest left references


class RegistryCleaner:
    def __init__(self, client: httpx.Client, base_url: str, host: str, prefix: str, folder: Path,
                 budget: Budget, grace: float,
                 measure: Callable[[Path], int] = folder_bytes) -> None:
        self.client = client  # with bindery's pusher credential (RegistryAuth)
        self.base_url = base_url.rstrip("/")
        self.host = host  # host:port as in image names
        self.prefix = prefix  # bindery's repositories: image_prefix
        self.folder = folder  # the registry's storage folder
        self.budget = budget
        self.grace = grace
        self.measure = measure

    # -- reading the registry -----------------------------------------------------------------------
    def repositories(self) -> list[str]:
        out: list[str] = []
        url = f"{self.base_url}/v2/_catalog?n={PAGE}"
        for _ in range(MAX_PAGES):
            response = self.client.get(url)
            response.raise_for_status()
            out.extend(response.json().get("repositories") or [])
            link = response.headers.get("link", "")
            if not link.startswith("<"):
                return out
            url = urljoin(self.base_url, link[1:link.index(">")])
        raise RuntimeError(f"the registry's catalog has more than {PAGE * MAX_PAGES} repositories")

    def manifests(self) -> list[Manifest]:
        """Every tagged manifest in the registry (one per repository and digest)."""
        out = []
        for repo in self.repositories():
            response = self.client.get(f"{self.base_url}/v2/{repo}/tags/list")
            if response.status_code == 404:  # emptied since the catalog was read
                continue
            response.raise_for_status()
            by_digest: dict[str, list[str]] = {}
            blobs_of: dict[str, dict[str, int]] = {}
            for tag in response.json().get("tags") or []:
                found = self._manifest(repo, tag)
                if found is None:
                    continue
                digest, blobs = found
                by_digest.setdefault(digest, []).append(tag)
                blobs_of[digest] = blobs
            out.extend(Manifest(repo, d, tuple(sorted(t)), blobs_of[d]) for d, t in by_digest.items())
        return out

    def _manifest(self, repo: str, reference: str) -> tuple[str, dict[str, int]] | None:
        response = self.client.get(f"{self.base_url}/v2/{repo}/manifests/{reference}",
                                   headers=MANIFEST_HEADERS)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body = response.json()
        blobs: dict[str, int] = {}
        for child in body.get("manifests") or []:  # an index: what its platforms' manifests hold
            found = self._manifest(repo, child["digest"])
            if found is not None:
                blobs.update(found[1])
        for entry in [body.get("config") or {}, *(body.get("layers") or [])]:
            if entry.get("digest"):
                blobs[entry["digest"]] = int(entry.get("size") or 0)
        return response.headers.get("docker-content-digest", reference), blobs

    # -- choosing ------------------------------------------------------------------------------------
    def plan(self, used: int, manifests: list[Manifest], used_at: dict[str, float],
             protected: Iterable[str], now: float) -> Plan:
        """What this pass deletes, the registry using ``used`` bytes and holding ``manifests``:
        nothing under the high mark; above it, the least recently launched of bindery's
        unprotected images until what their deletion frees brings the use under the low mark."""
        plan = Plan(used, manifests)
        if used <= self.budget.high:
            return plan
        keep = set(protected)
        references = Counter(b for m in manifests for b in m.blobs)
        sizes = {b: s for m in manifests for b, s in m.blobs.items()}
        candidates = []
        for manifest in manifests:
            names = manifest.names(self.host)
            if not manifest.repo.startswith(self.prefix) or keep.intersection(names):
                continue
            last = max((used_at[n] for n in names if n in used_at), default=0.0)
            if now - last < self.grace:
                continue
            candidates.append((last, manifest))
        for _last, manifest in sorted(candidates, key=lambda c: c[0]):
            if used - plan.freed <= self.budget.low:
                break
            plan.victims.append(manifest)
            for blob in manifest.blobs:
                references[blob] -= 1
                if references[blob] == 0:
                    plan.freed += sizes[blob]
        return plan

    # -- deleting ------------------------------------------------------------------------------------
    def delete(self, manifest: Manifest) -> bool:
        """Delete ``manifest`` (and the tags naming it); False when the registry refuses."""
        response = self.client.delete(f"{self.base_url}/v2/{manifest.repo}/manifests/{manifest.digest}")
        if response.status_code in (200, 202, 404):  # 404: deleted already (another pass)
            return True
        log.warning("registry: deleting %s@%s refused: HTTP %d %s", manifest.repo, manifest.digest,
                    response.status_code, response.text[:300])
        return False
