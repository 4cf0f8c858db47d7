"""The published @jupyterhub/binderhub-client (node_modules, unmodified) drives launches to ready.

Against the stand-in stream (fakestack.py) always; against the real stack in
test_binderhub_client_stack.py. What the client needs from the stream is listed in
binderhub_client_launch.mjs's caller notes below.

The client's protocol (lib/client.js 0.5.0, read from its source):
- GET <endpoint>/<provider>/<spec>[?build_token=..][&build_only=true], Accept: text/event-stream;
  on reconnect it sends Last-Event-ID (header) with the last ``id:`` it saw.
- any 2xx opens the stream (content type unchecked); 4xx other than 429 -> failed, no retry;
  429 and 5xx -> "unknown" event and retry (every second, or the stream's ``retry:``).
- every ``data:`` is JSON; ``phase`` is lower-cased; ``failed`` ends the stream client-side.
- a stream the server ends before ``ready``/``failed`` is reported as failed ("Event stream closed
  unexpectedly"), and a network error is a failure too: it does not reconnect mid-launch.
- LaunchSpec: redirect = new URL(urlpath, url) + ?token= so ``url`` must end with '/'.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .fakestack import TOKEN, USER, serve

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
CLIENT = ROOT / "node_modules" / "@jupyterhub" / "binderhub-client" / "lib" / "client.js"

# A marker only: node and the npm client are installed by scripts/install.sh; missing, they fail.
needs_client = pytest.mark.npm_client


def run_client(base: str, provider_spec: str, urlpath: str = "", build_token: str | None = None,
               timeout: float = 60) -> tuple[int, dict]:
    args = ["node", str(HERE / "binderhub_client_launch.mjs"), base, provider_spec, urlpath]
    if build_token:
        args.append(build_token)
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={"PATH": "/usr/local/bin:/usr/bin:/bin",
                               "LAUNCH_TIMEOUT_MS": str(int(timeout * 1000) - 5000)})
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    return done.returncode, json.loads(lines[-1])


@needs_client
def test_client_reaches_ready_and_the_server():
    with serve() as (base, record):
        code, result = run_client(base, "gh/org/repo/main", "lab")
        assert code == 0, result
        assert result["phases"][0] == "waiting" and result["phases"][-1] == "ready"
        assert result["api_status"] == 200
        assert result["redirect"] == f"{base}user/{USER}/lab?token={TOKEN}"
        assert record.launches["gh/org/repo/main"] == 1


@needs_client
def test_client_reports_failure_in_band():
    with serve(rate_limit_per_minute=1) as (base, _):
        code, result = run_client(base, "gh/org/broken/main")
        assert code == 1 and result["failure"]["message"].startswith("Build failed")
        # the limit is spent: the refusal reaches the client as a failed event with its message
        code, result = run_client(base, "gh/org/repo/main")
        assert code == 1
        assert result["failure"]["status_code"] == 429
        assert "Too many launches" in result["failure"]["message"]
