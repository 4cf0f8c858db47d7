"""What the service log costs a launch: the time to write the lines one launch produces (JSON, with its
launch context and redaction), against the same lines written by logging's plain formatter.

Run: .venv/bin/python bench/log_cost.py   (LINES: a cached launch writes about this many lines)
"""

from __future__ import annotations

import io
import logging
import time

from bindery import service_log

LINES = 12
ROUNDS = 2000


def cost(formatter: logging.Formatter) -> float:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log = logging.getLogger("bench.launch")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    context = service_log.LaunchContext(launch_id="3f9c1e0a7b2d", spec="gh/org/repo/main",
                                        repo="https://github.com/org/repo", ref="main",
                                        phase="launching")
    started = time.perf_counter()
    with service_log.about(context):
        for _ in range(ROUNDS):
            for i in range(LINES):
                log.info("server at %s ready", "http://hub/user/u/?token=abc123",
                         extra={"status": "ready", "duration": 1.25})
    return (time.perf_counter() - started) / ROUNDS


if __name__ == "__main__":
    plain = cost(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    json_lines = cost(service_log.JsonLines())
    text = cost(service_log.Text())
    print(f"{LINES} lines a launch: json {json_lines * 1e3:.3f} ms, text {text * 1e3:.3f} ms, "
          f"logging's plain formatter {plain * 1e3:.3f} ms (per launch)")
