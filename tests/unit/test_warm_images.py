"""Which images the service keeps on the run engine (bindery/launches/warm_images.py): the base image,
then each pool's current image, once each, read from the real state store (SQLite). The pulls
themselves are checked against the real run engine in tests/production/test_prepull.py."""

from __future__ import annotations

from pathlib import Path

from bindery.launches.warm_images import WarmImages
from bindery.state.pool_records import PoolBook, PoolOrigin, pool_key
from bindery.state.sqlite_store import SQLiteStore

BASE = "registry.example.org/bindery/base:0123456789ab"


async def test_the_base_image_then_each_pool_s_current_image(tmp_path: Path):
    store = SQLiteStore(tmp_path / "state.sqlite")
    book = PoolBook(store)
    try:
        for repo, image in (("a", "r/a:1"), ("b", "r/b:2"), ("c", BASE)):
            origin = PoolOrigin("git", f"{repo}/main", f"https://git.example.org/{repo}", repo)
            await book.take(pool_key(repo, "main"), origin, image, create=True, window=None)
        await book.take(pool_key("a", "main"), PoolOrigin("git", "a/main", "u", "a"), "r/a:3",
                        create=True, window=None)  # a later launch does not move the pool's image
        warm = WarmImages(prepuller=None, base_image=BASE, pools=book, interval=60)  # type: ignore[arg-type]
        wanted = await warm.wanted()
        assert wanted[0] == BASE and sorted(wanted[1:]) == ["r/a:1", "r/b:2"]  # c's is the base
        alone = WarmImages(prepuller=None, base_image=BASE, pools=None, interval=60)  # type: ignore[arg-type]
        assert await alone.wanted() == [BASE]
    finally:
        await store.aclose()
