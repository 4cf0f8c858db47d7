"""The launch event log: one JSON line per launch in BinderHub's launch schema, in a file per UTC day
(mybinder.org's events archive shape). Lines are validated against the schema written from
BinderHub's published one (tests/data/binderhub_launch_schema.json); the launch is a real one on the
session's stack, whose log goes to <data_dir>/launch-events."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import jsonschema

from bindery.launches.launch_log import LaunchLog
from bindery.web.commands import stream_events

SCHEMA = json.loads((Path(__file__).parent / "data" / "binderhub_launch_schema.json").read_text())
BOOK = "https://book.example.org"


def lines(folder: Path) -> list[dict]:
    path = folder / f"events-{datetime.now(UTC).date().isoformat()}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_a_launch_writes_one_line_in_binderhubs_schema(stack, git_repo_factory, git_server):
    path, _ = git_repo_factory("logged")
    commit = git_server.git(git_server.root / path, "rev-parse", "HEAD")
    folder = stack.launches.launch_log_dir
    async with httpx.AsyncClient(headers={"Origin": BOOK}) as client:  # as a book page's launch
        events = [e async for e in stream_events(stack, "gh", f"{path}/main", client)]
    assert events[-1].phase == "ready", events[-1]
    mine = [line for line in lines(folder) if line["spec"] == f"{path}/main"]
    assert len(mine) == 1, mine
    jsonschema.validate(mine[0], SCHEMA)
    host = stack.service.web_url.split("://", 1)[1].rstrip("/")
    assert {k: v for k, v in mine[0].items() if k != "timestamp"} == {
        "schema": "binderhub.jupyter.org/launch", "version": 6, "provider": "GitHub",
        "spec": f"{path}/main", "ref": commit, "status": "success", "build_token": False,
        "origin": host, "request_origin": BOOK}
    for line in lines(folder):  # every other launch of the session so far too
        jsonschema.validate(line, SCHEMA)


def test_daily_files_pruned_and_the_service_log(tmp_path, caplog):
    log = LaunchLog(tmp_path, keep_days=2, to_service_log=True, origin="binder.example.org")
    for day in ("2026-01-01", "2026-01-02"):
        log._append(date.fromisoformat(day), json.dumps({"day": day}))
    (tmp_path / "notes.txt").write_text("not ours")
    log._append(date.fromisoformat("2026-01-03"), json.dumps({"day": "2026-01-03"}))
    # Two days kept (today's and yesterday's file); the oldest went when the new day began.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "events-2026-01-02.jsonl", "events-2026-01-03.jsonl", "notes.txt"]
    with caplog.at_level(logging.INFO, logger="bindery.launch_events"):
        log.record("zenodo", "10.5281/zenodo.3242074", "3242074", request_origin="same-origin")
        log.record("local", "/srv/folder", "")  # no BinderHub provider name: not logged
    [line] = [json.loads(r.getMessage()) for r in caplog.records
              if r.name == "bindery.launch_events"]
    jsonschema.validate(line, SCHEMA)
    assert line["provider"] == "Zenodo" and line["request_origin"] == "same-origin"
    assert lines(tmp_path)[-1] == line  # the same line in today's file
