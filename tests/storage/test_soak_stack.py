"""The storage soak (bench/soak.py) at a small scale, on a real stack of its own: a few distinct
repositories really built and launched through the HTTP API, budgets so small that every store
evicts, older repositories launched again.

"Under budget" means: at every sample (after each launch, its server running, and at the start
and end), a store's use, measured as the keeper measures it (its folder's allocated blocks: ``du``),
and the use the keeper's last pass reported (bindery_store_bytes), are at most the store's budget.
The high mark (store_high_ratio of the budget) is where a pass starts removing and the low mark
where it stops, so between two passes (one keeper period) a store may rise above its high mark,
by what arrives meanwhile, but never above the budget.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

# appended, not first: bench/ has modules named like common words (state, run, homes)
sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))
soak = importlib.import_module("soak")  # bench/soak.py: the one soak driver

# 8 MiB a repository, 20 MiB of room under each high mark: every store evicts after ~3 launches.
SMALL = soak.Sizing(repos=7, layer_mib=8, room_mib=20, relaunch_every=2, period=2.0, grace=6.0,
                    build_store_gib=3.0)


async def test_a_small_soak_keeps_every_store_under_budget(tmp_path):
    result = await soak.run_soak(SMALL, root=tmp_path)
    print(soak.report(result, tmp_path / "figures.json"))

    assert result.failures == []  # no launch failed, for disk or anything else
    assert len(result.launches) == SMALL.repos + SMALL.repos // SMALL.relaunch_every
    for store in soak.STORES:
        assert result.over_budget(store) == [], (store, result.budget[store])
        figures = result.store_figures(store)
        assert figures["peak"] > result.baseline[store]  # the soak did write into it
    for store in ("run", "registry"):  # evicted for real
        assert result.store_figures(store)["reclaimed"] > 0, result.keeper
    evicted = [x for x in result.launches
               if x["relaunch"] and x["kind"] in ("pulled again", "rebuilt")]
    assert evicted and all(x["outcome"] == "ready" for x in evicted), result.launches
    assert all(not x["before"]["run"] or not x["before"]["registry"] for x in evicted)
    assert result.base_kept == {"run": True, "registry": True}
    assert not list(tmp_path.glob("stack-*")), "the soak's stack was not removed"
