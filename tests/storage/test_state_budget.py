"""The state store kept within its bytes by the storage keeper's pass: above the high mark, ended
launches are forgotten until under the low mark; the pass is counted in the store metrics and its
log line names launches by their launch ids, never by their session ids (capabilities)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from prometheus_client import generate_latest

from bindery import service_log
from bindery.metrics import Metrics
from bindery.settings import Settings
from bindery.state import open_store
from bindery.storage.keeper import StorageKeeper


async def test_the_keeper_forgets_ended_launches_to_keep_the_state_store_within_budget(
        tmp_path: Path, caplog):
    settings = Settings(data_dir=tmp_path / "data", api_only=True)
    store = open_store(settings)
    try:
        empty = await store.used_bytes()
        sids = [f"{i:02d}" + "a" * 30 for i in range(60)]
        for sid in sids:
            await store.create_session(sid, {"provider": "gh", "spec": "a/b/main"})
            for _ in range(8):
                await store.append(sid, json.dumps({"message": "y" * 3000}))
            await store.end_session(sid)
        full = await store.used_bytes()
        budget = empty + (full - empty) * 2 // 3  # high mark (0.9) under the use; low mark (0.8) too
        keeper = StorageKeeper(settings.model_copy(update={"state_store_bytes": budget}), store,
                               metrics := Metrics(), owner="keeper")
        assert "state" in keeper.stores
        with caplog.at_level(logging.INFO, logger="bindery.storage.keeper"):
            result = await keeper.clean_state()
        assert result is not None and result.before == full
        assert result.after <= keeper.budgets["state"].low < result.before
        assert 0 < len(result.removed) < len(sids)
        gone = [sid for sid in sids if await store.session(sid) is None]
        assert gone == sids[:len(gone)] and len(gone) == len(result.removed)  # oldest first
        assert result.removed == [service_log.launch_id(sid) for sid in gone]
        text = caplog.text
        assert "ended launches forgotten" in text and not any(sid in text for sid in sids)
        exposed = generate_latest(metrics.registry).decode()
        assert f'bindery_store_bytes{{store="state"}} {float(result.after)}' in exposed

        again = await keeper.clean_state()  # under the high mark now: nothing more goes
        assert again is not None and again.removed == []
    finally:
        await store.aclose()
