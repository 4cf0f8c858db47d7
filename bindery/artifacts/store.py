"""Artifact stores: where released wheels (and the Helm charts packaged for them) live until a deploy installs them.

Why an interface: today a folder on the machine (`FolderStore`); the local OCI registry could hold images later as a
second kind. Deploys only ask "is version V there, where, with which checksum" and "what is newest".

The folder holds the wheels plus ``index.json``. A wheel is copied under a temporary name and renamed into place
before its index entry is written, so whoever sees the entry sees a complete file (a waiting deploy never installs a
half-written wheel).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Iterator, Protocol

from packaging.version import InvalidVersion, Version

INDEX_NAME = "index.json"


@dataclass(frozen=True)
class Artifact:
    """One released version in a store."""

    version: str
    commit: str
    filename: str
    sha256: str
    size: int
    created: str  # ISO 8601, UTC
    kind: str = "wheel"  # or "chart": one of each per version, side by side
    location: str = ""  # where the file is (a path for a folder store)

    def to_dict(self) -> dict:
        return asdict(self)


class ArtifactStore(Protocol):
    """What deploys need from a store of released artifacts."""

    @property
    def location(self) -> str:
        """Where the store is, for messages ("in /srv/bindery/artifacts")."""

    def find(self, version: str, kind: str = "wheel") -> Artifact | None: ...

    def list(self, kind: str = "wheel") -> list[Artifact]: ...

    def put(self, path: Path, version: str, commit: str, kind: str = "wheel") -> Artifact: ...


def newest(store: ArtifactStore) -> Artifact | None:
    """The released artifact with the highest PEP 440 version (what `bindery bump` moves to)."""
    def key(a: Artifact) -> tuple[Version, str]:
        try:
            return Version(a.version), a.created
        except InvalidVersion:
            return Version("0"), a.created
    items = store.list()
    return max(items, key=key) if items else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FolderStore:
    """Artifacts in a folder with a JSON index; safe for several releasers and readers at once."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def location(self) -> str:
        return str(self.root)

    def __repr__(self) -> str:
        return f"FolderStore({self.location!r})"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_index(self) -> list[dict]:
        try:
            data = json.loads((self.root / INDEX_NAME).read_text())
        except FileNotFoundError:
            return []
        except ValueError as exc:
            raise RuntimeError(f"artifact index {self.root / INDEX_NAME} is not valid JSON: {exc}") from None
        return list(data.get("artifacts", []))

    def _write_index(self, entries: list[dict]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".index-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"artifacts": entries}, f, indent=2)
            f.write("\n")
        os.replace(tmp, self.root / INDEX_NAME)

    def _artifact(self, entry: dict) -> Artifact:
        fields = {k: entry[k] for k in ("version", "commit", "filename", "sha256", "size", "created")}
        return Artifact(**fields, kind=entry.get("kind", "wheel"), location=str(self.root / entry["filename"]))

    def list(self, kind: str = "wheel") -> list[Artifact]:
        """The artifacts of one kind ("wheel"; "chart": the Helm chart packaged for that version)."""
        return [self._artifact(e) for e in self._read_index()
                if e.get("kind", "wheel") == kind and (self.root / e["filename"]).is_file()]

    def find(self, version: str, kind: str = "wheel") -> Artifact | None:
        for artifact in self.list(kind):
            if artifact.version == version:
                return artifact
        return None

    def put(self, path: Path, version: str, commit: str, kind: str = "wheel") -> Artifact:
        """Copy the file in (atomically), then record it; replaces an earlier entry of the same version and kind."""
        path = Path(path)
        digest = sha256_of(path)
        with self._locked():
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            os.close(fd)
            shutil.copyfile(path, tmp)
            os.replace(tmp, self.root / path.name)
            entry = {
                "version": version,
                "commit": commit,
                "filename": path.name,
                "sha256": digest,
                "size": path.stat().st_size,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "kind": kind,
            }
            entries = [e for e in self._read_index()
                       if (e.get("version"), e.get("kind", "wheel")) != (version, kind)] + [entry]
            self._write_index(entries)
        return self._artifact(entry)

    def verify(self, artifact: Artifact) -> bool:
        """True when the file still has the checksum recorded at release time."""
        return sha256_of(Path(artifact.location)) == artifact.sha256
