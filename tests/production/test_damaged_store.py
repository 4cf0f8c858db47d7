"""A damaged state store is seen (the real service and the real CLI): `/health` is red naming the
store, a launch ends with a `failed` event about the store (not a cut stream), and `bindery up`
refuses to start with the reason.

The service here has a data folder of its own (its own state.sqlite, damaged on purpose) and uses
the session stack's hub, registry and engines, so nothing of the session stack is touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from bindery.event_stream import amessages
from bindery import datadir
from bindery.events import Event
from bindery.settings import Settings
from tests.production.conftest import base_image_name, start_service
from tests.state.test_store_damage import damage, filled_store


async def damaged_data_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    await filled_store(data_dir / "state.sqlite")
    damage(data_dir / "state.sqlite")
    return data_dir


async def test_a_damaged_store_turns_health_red_and_fails_launches_clearly(stack: Settings,
                                                                           tmp_path: Path):
    data_dir = await damaged_data_dir(tmp_path)
    service = start_service(stack, tmp_path / "logs", data_dir=data_dir,
                            hub_api_url=datadir.hub_api(stack),
                            hub_api_token=datadir.hub_token(stack),
                            registry_url=stack.registry.url, run_docker_host=stack.run_socket,
                            build_docker_host=stack.build_socket,
                            base_image=base_image_name(stack))
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            health = await client.get(f"{service.url}/health")
            assert health.status_code == 503
            check = next(c for c in health.json()["checks"] if c["service"] == "State store")
            assert not check["ok"] and "is damaged" in check["error"], check
            assert str(data_dir / "state.sqlite") in check["error"]
            async with client.stream("GET", f"{service.url}/build/gh/org/repo/main") as answer:
                assert answer.status_code == 200
                events = [Event.model_validate_json(m.data) async for m in amessages(answer.aiter_lines())]
        assert [e.phase for e in events] == ["failed"], events
        assert events[0].data()["status_code"] == 503
        assert "state store" in events[0].message and "damaged" in events[0].message
    finally:
        service.stop()
    log = service.log_text()
    assert "Traceback" not in log, log[-3000:]


async def test_bindery_up_says_the_store_is_damaged(tmp_path: Path):
    data_dir = await damaged_data_dir(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERY_")}
    result = subprocess.run([sys.executable, "-m", "bindery", "up", "--data-dir", str(data_dir)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"the state store {data_dir / 'state.sqlite'} is damaged" in result.stderr
    assert "started" not in result.stdout  # it stopped before starting any part
