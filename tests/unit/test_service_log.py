"""The service's log lines: JSON with the launch they are about, secrets redacted (bindery/service_log.py)."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from bindery import service_log
from bindery.builds.queue import BuildJob, BuildQueue
from bindery.events import Event
from bindery.service_log import LaunchContext, about, redact


@pytest.fixture
def lines():
    """Log lines of the root logger, as the service writes them (JSON), read back parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(service_log.JsonLines())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def read() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield read
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.mark.parametrize("secret_text,secret", [
    ('"GET /build/gh/o/r/main?lastEventId=Ab3_x9.4&x=1 HTTP/1.1" 200', "Ab3_x9.4"),
    ("GET /build/gh/o/r/main?last-event-id=Zq8.2", "Zq8.2"),
    ("/user/u/lab?token=0123abcd", "0123abcd"),
    ("build_token=eyJhbGci.sig", "eyJhbGci.sig"),
    ('{"token": "s3cr3t-value"}', "s3cr3t-value"),
    ("Authorization: token hubtoken123", "hubtoken123"),
    ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
    ("redis://:p4ssw0rd@127.0.0.1:6390/0", "p4ssw0rd"),
    ("https://user:ghp_abcdef@git.example.org/r.git", "ghp_abcdef"),
    ("api_token=xyz789 and more", "xyz789"),
    ("GET /build-logs/bindery-build-0a1b.txt?key=Pr1vateK3y HTTP/1.1", "Pr1vateK3y"),
])
def test_secrets_and_capabilities_are_redacted(secret_text: str, secret: str):
    out = redact(secret_text)
    assert secret not in out and "[redacted]" in out


def test_text_without_secrets_is_unchanged():
    text = "launch ready in 2.1 s: tokens minted for https://git.example.org/r.git at main"
    assert redact(text) == text


def test_a_line_is_json_with_the_launch_it_is_about_and_no_secret(lines):
    log = logging.getLogger("bindery.launches.pipeline")
    with about(LaunchContext(launch_id="abc123", repo="https://x/r", ref="main", phase="building")):
        log.info("server at %s", "http://h/user/u/?token=SECRETTOKEN", extra={"status": "ready"})
    log.info("a line about no launch")
    try:
        raise RuntimeError("failed with Authorization: token HUBSECRET")
    except RuntimeError:
        log.exception("boom")
    first, second, third = lines()
    assert first["logger"] == "bindery.launches.pipeline" and first["level"] == "info"
    assert first["time"].endswith("Z") and first["status"] == "ready"
    assert {first[k] for k in ("launch_id", "repo", "ref", "phase")} == {
        "abc123", "https://x/r", "main", "building"}
    assert "SECRETTOKEN" not in json.dumps(first) and "token=[redacted]" in first["message"]
    assert "launch_id" not in second
    assert "HUBSECRET" not in third["exception"] and "RuntimeError" in third["exception"]


def test_the_launch_id_names_a_session_without_revealing_it():
    sid = "kq3J0x_Lm2pQ"
    assert service_log.launch_id(sid) == service_log.launch_id(sid)  # any process derives it
    assert service_log.launch_id(sid) != service_log.launch_id(sid + "x")
    assert sid not in service_log.launch_id(sid)


async def test_tasks_started_by_a_launch_carry_its_id_and_a_build_carries_its_own(lines):
    """A launch's context reaches the tasks it starts; a build shared by launches names the build."""
    log = logging.getLogger("tests.launch")
    started = asyncio.Event()

    async def run_build(job: BuildJob):
        log.info("build output")
        started.set()
        yield Event(phase="building", message="step\n")

    queue = BuildQueue(run_build, slots=1, per_repo=1)

    async def one_launch(launch: str) -> None:
        service_log.set_current(LaunchContext(launch_id=launch, repo="https://x/r"))
        build = queue.submit(BuildJob(image="reg/img:1", repo="https://x/r", commit="c0ffee",
                                      source="https://x/r"))
        log.info("waiting for the build")
        async for _event in build.follow():
            pass
        await asyncio.get_running_loop().create_task(asyncio.sleep(0))  # a child task
        log.info("done")

    await asyncio.gather(one_launch("L1"), one_launch("L2"))
    await queue.aclose()
    by_message: dict[str, list[dict]] = {}
    for line in lines():
        by_message.setdefault(line["message"], []).append(line)
    assert sorted(line["launch_id"] for line in by_message["done"]) == ["L1", "L2"]
    assert sorted(line["launch_id"] for line in by_message["waiting for the build"]) == ["L1", "L2"]
    (build_line,) = by_message["build output"]
    assert "launch_id" not in build_line, "the build belongs to no single launch"
    assert build_line["build"] == "reg/img:1" and build_line["ref"] == "c0ffee"


def test_text_format_has_the_same_fields_on_one_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(service_log.Text())
    record = logging.makeLogRecord({"name": "bindery.x", "levelno": logging.INFO,
                                    "levelname": "INFO", "msg": "url?token=T0K", "status": "ready"})
    with about(LaunchContext(launch_id="abc")):
        handler.emit(record)
    line = stream.getvalue()
    assert "INFO bindery.x: url?token=[redacted]" in line
    assert "launch_id=abc" in line and "status=ready" in line and "T0K" not in line


def test_resume_link_secrets_never_reach_a_log_line():
    from bindery.service_log import redact

    secret = "Zk3_" + "q" * 40
    for text in (f"GET /v2/resume/{secret}?ref=main HTTP/1.1", f"launch of resume/{secret} refused",
                 f'{{"resume_url": "http://b/v2/resume/{secret}"}}', f"POST /resume/{secret}/delete"):
        assert secret not in redact(text) and "resume/[redacted]" in redact(text)
