"""`bindery launch` and `bindery status` against the running stack, as a person uses them."""

from __future__ import annotations

import asyncio
import json
import shutil

import httpx

from tests.conftest import run_cli


async def test_launch_prints_a_working_url(stack, git_repo_factory):
    path, url = git_repo_factory("cli")
    done = await asyncio.to_thread(run_cli, stack, "launch", url, "--ref", "main", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    ready = json.loads(done.stdout.strip().splitlines()[-1])
    assert ready["phase"] == "ready"
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{ready['url']}api", params={"token": ready["token"]})
    assert response.status_code == 200
    # as a person reads it: the server's URL, then the way back to its files
    again = await asyncio.to_thread(run_cli, stack, "launch", url, "--ref", "main")
    assert again.returncode == 0, again.stderr[-2000:]
    printed = again.stdout + again.stderr
    assert f"{stack.service.web_url}v2/resume/" in printed, printed[-2000:]


async def test_launch_of_a_local_folder_and_a_failure_exit_code(stack, base_image, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy("examples/hello/Dockerfile", folder / "Dockerfile")
    (folder / "data.txt").write_text("local folder content\n")
    done = await asyncio.to_thread(run_cli, stack, "launch", str(folder))
    assert done.returncode == 0, done.stderr[-2000:]
    link = done.stdout.strip().splitlines()[-1]
    base, _, token = link.partition("?token=")
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{base}api/contents/data.txt", params={"token": token})
    assert response.status_code == 200
    assert response.json()["content"] == "local folder content\n"

    bad = await asyncio.to_thread(run_cli, stack, "launch", "git://127.0.0.1:1/nothing", "--json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout.strip().splitlines()[-1])["phase"] == "failed"


def test_status_json_names_the_parts(stack):
    done = run_cli(stack, "status", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    status = json.loads(done.stdout)
    assert status["url"] == stack.service.web_url
    assert status["base_image"].startswith(f"{stack.registry.host}/bindery/base:")
    assert {"web", "hub", "registry", "engine_build", "engine_run"} <= set(status["parts"])
    # One process (replicas = 1): it is the one replica; no load balancer, no Redis.
    assert [r["name"] for r in status["replicas"]] == ["web"]
    assert status["replicas"][0]["pid"] == status["parts"]["web"]["pid"] is not None
    assert "balancer" not in status["parts"] and "redis" not in status["parts"]


def test_up_refuses_a_replica_count_below_one(stack):
    done = run_cli(stack, "up", "--replicas", "0")
    assert done.returncode == 2
    assert "replicas" in done.stderr and "greater than or equal to 1" in done.stderr
