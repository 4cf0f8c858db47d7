"""A launch can be followed in the service's own log by its id, from request to outcome (real stack).

The web service's log file is read back line by line: every line must be JSON, every line about a
launch must name it, and no line may carry a capability (the session id a ``lastEventId`` replays)
or a token.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from bindery import backoff
from bindery.stack import operator_status
from tests.streams import git_spec
from tests.test_resume import read_events

OUTCOME_WAIT = 20.0  # the outcome line follows the terminal event by the pipeline's last step


def log_lines(path: Path, offset: int) -> list[dict]:
    """Every line written after ``offset``, parsed: a line that is not JSON fails the test."""
    out = []
    with path.open("rb") as f:
        f.seek(offset)
        for raw in f.read().decode().splitlines():
            if not raw.strip() or raw.startswith("=== "):  # the process runner's start marker
                continue
            line = json.loads(raw)  # raises on anything that is not one JSON object per line
            assert {"time", "level", "logger", "message"} <= line.keys(), line
            out.append(line)
    return out


def wait_for_line(path: Path, offset: int, match) -> list[dict]:
    """The lines after ``offset`` once one matches (bounded: the outcome line is written just after
    the terminal event reaches the client)."""
    def found() -> list[dict] | None:
        lines = log_lines(path, offset)
        return lines if any(match(line) for line in lines) else None

    return backoff.wait_until(found, timeout=OUTCOME_WAIT, what="the outcome line", interval=0.2)


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(30, read=180))


async def test_a_launch_is_followed_by_its_id_from_request_to_outcome(stack, git_repo_factory):
    web_log = stack.logs_dir / "web.log"
    offset = web_log.stat().st_size
    _, url = git_repo_factory("logged", "RUN echo logged-build-step && sleep 2")
    build_url = f"{stack.service.web_url}build/git/{git_spec(url, 'main')}"
    async with client() as http:
        async with http.stream("GET", build_url) as response:
            first = await read_events(response, lambda e: e.phase in ("building", "failed"))
        # Reconnect as binderhub-client does: the resume position in the query string.
        last_id = first[-1][0]
        async with http.stream("GET", build_url, params={"lastEventId": last_id}) as response:
            rest = await read_events(response, lambda e: e.terminal)
    ready = rest[-1][1].data()
    assert ready["phase"] == "ready", ready
    launch_id = ready["launch_id"]
    session = last_id.rpartition(".")[0]

    lines = wait_for_line(web_log, offset, lambda l: l.get("launch_id") == launch_id
                          and l.get("outcome") == "launch")
    mine = [line for line in lines if line.get("launch_id") == launch_id]
    messages = [line["message"] for line in mine]
    # the request's own lines (the web handler's, the access log's) come first; then the pipeline's
    pipeline = [line for line in mine if not line["logger"].startswith(("uvicorn.", "bindery.web"))]
    assert pipeline[0]["message"] == "launch requested", messages
    # Both requests' access lines name the launch; the resume position in them is redacted.
    access = [line for line in mine if line["logger"] == "uvicorn.access"]
    assert len(access) == 2, messages
    assert any("lastEventId=[redacted]" in line["message"] for line in access)
    # Every line about the launch says which repository and ref, and the phase it was in.
    assert all(line.get("repo") == url and line.get("ref") == "main" for line in pipeline), pipeline
    seen = {line.get("phase") for line in mine}
    assert {"fetching", "ready"} <= seen and seen & {"waiting", "building"}, seen
    (queued,) = [line for line in mine if line["message"].startswith("queued the build")]
    assert queued["build"] == ready["image"]
    (outcome,) = [line for line in mine if line.get("outcome") == "launch"]
    assert outcome["status"] == "ready" and outcome["duration"] > 2
    assert outcome["image"] == ready["image"]
    # The build the launch started has its own outcome line, under the image it built.
    builds = [line for line in lines if line.get("outcome") == "build"
              and line.get("image") == ready["image"]]
    assert [b["status"] for b in builds] == ["success"] and builds[0]["build"] == ready["image"]
    # No capability and no token anywhere in the log.
    text = web_log.read_bytes()[offset:].decode()
    assert session not in text
    assert ready["token"] not in text


async def test_a_failed_launch_says_why_in_one_outcome_line(stack, git_repo_factory):
    web_log = stack.logs_dir / "web.log"
    offset = web_log.stat().st_size
    _, url = git_repo_factory("logged-broken", "RUN echo 'logged-failure-marker' && exit 7")
    async with client() as http, http.stream(
            "GET", f"{stack.service.web_url}build/git/{git_spec(url, 'main')}") as response:
        events = await read_events(response, lambda e: e.terminal)
    failed = events[-1][1].data()
    assert failed["phase"] == "failed", failed
    launch_id = failed["launch_id"]  # what the person quotes to the operators
    lines = wait_for_line(web_log, offset, lambda l: l.get("launch_id") == launch_id
                          and l.get("outcome") == "launch")
    (outcome,) = [line for line in lines if line.get("launch_id") == launch_id
                  and line.get("outcome") == "launch"]
    assert outcome["status"] == "failed" and outcome["level"] == "warning"
    assert outcome["reason"] == failed["message"].strip() and "Build failed" in outcome["reason"]
    # the phase it was in when it ended: an operator sees where it broke
    assert outcome["repo"] == url and outcome["phase"] == "building"
    (build,) = [line for line in lines if line.get("outcome") == "build" and line.get("repo") == url]
    assert build["status"] == "failure" and "Build failed" in build["reason"]
    # An operator's first look names it too, beside each store's use against its budget.
    view = await asyncio.to_thread(operator_status.overview, stack)  # the CLI's, synchronous
    assert any(f.get("launch_id") == launch_id and f["reason"] == outcome["reason"]
               for f in view["failures"]), view["failures"]
    assert {"run", "build"} <= view["storage"].keys(), view
    assert all(s["budget"] > s["high"] > 0 for s in view["storage"].values()), view["storage"]
    assert launch_id in "\n".join(operator_status.lines(view))
