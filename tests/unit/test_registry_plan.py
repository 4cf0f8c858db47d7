"""The registry cleaner's choice: least recently launched first, and a shared layer counts as freed
only when the last image using it goes (so a pass deletes no more than its low mark asks)."""

from __future__ import annotations

from pathlib import Path

from bindery.storage.disk_use import Budget
from bindery.storage.registry_cleaner import Manifest, RegistryCleaner

HOST = "127.0.0.1:5000"


def image(name: str, *blobs: tuple[str, int]) -> Manifest:
    return Manifest(f"bindery/{name}", f"sha256:{name}", ("t",), dict(blobs))


def cleaner(high: int, low: int) -> RegistryCleaner:
    return RegistryCleaner(None, "http://x", HOST, "bindery/", Path("/nonexistent"),  # type: ignore[arg-type]
                           Budget("registry", 100, high, low), grace=60)


def test_shared_layers_are_freed_only_with_their_last_image():
    base = ("sha256:base", 50)
    manifests = [image("a", base, ("sha256:a", 10)), image("b", base, ("sha256:b", 10)),
                 image("c", ("sha256:c", 10)),
                 Manifest("other/d", "sha256:d", ("t",), {"sha256:d": 90})]  # not bindery's
    used_at = {f"{HOST}/bindery/a:t": 100.0, f"{HOST}/bindery/b@sha256:b": 200.0,
               f"{HOST}/bindery/c:t": 990.0}  # c: launched within the grace period
    # 80 used, low mark 25: a frees 10, b then frees 10 + the shared 50
    plan = cleaner(high=70, low=25).plan(80, manifests, used_at, protected=(), now=1000.0)
    assert [m.repo for m in plan.victims] == ["bindery/a", "bindery/b"] and plan.freed == 70
    # low mark 75: a alone is enough
    plan = cleaner(high=70, low=75).plan(80, manifests, used_at, protected=(), now=1000.0)
    assert [m.repo for m in plan.victims] == ["bindery/a"] and plan.freed == 10
    # under the high mark: nothing; a protected by digest: b first
    assert cleaner(high=90, low=25).plan(80, manifests, used_at, (), 1000.0).victims == []
    plan = cleaner(high=70, low=75).plan(80, manifests, used_at, {f"{HOST}/bindery/a@sha256:a"},
                                         1000.0)
    assert [m.repo for m in plan.victims] == ["bindery/b"]
