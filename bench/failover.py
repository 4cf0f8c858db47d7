"""Failover of the load balancer in front of several replicas: how long after a replica dies HAProxy stops
routing to it, and how many requests fail meanwhile.

Runs real `bindery serve` replicas behind real HAProxy and the stack's Redis (`bindery.stack.replicas`), without
engines or a hub (a replica's /health then answers 503, which still counts as alive: see bindery/stack/balancer.py).
Each trial SIGKILLs one replica while a client sends back-to-back requests through the public port, and prints:
seconds until HAProxy logs the replica DOWN (health check), seconds until the first request served after the kill,
requests that failed. Baseline in the same run: the health check's own bound (fall × fastinter after the last
passed check, plus up to one interval), which a load balancer without connection retries would need before
routing around the dead replica; the ratio says how much of that window retries remove for clients.
Usage: .venv/bin/python bench/failover.py [--trials 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bindery.backoff import wait_until  # noqa: E402
from bindery.settings import Settings  # noqa: E402
from bindery.stack import balancer, process, replicas  # noqa: E402
from bindery.datadir import StackPaths  # noqa: E402
from tests.conftest import free_port  # noqa: E402

FALL, FASTINTER, INTER = 2, 0.5, balancer.CHECK_INTERVAL_MS / 1000


def trial(settings: Settings, victim: str) -> dict[str, float]:
    paths = StackPaths.of(settings)
    log = paths.log(balancer.NAME)
    marker = f"{victim} is DOWN"
    seen_before = log.read_text(errors="replace").count(marker)
    pid = process.read_pid(paths, victim)
    assert pid is not None, victim
    failed = 0
    first_ok = down = None
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    with httpx.Client(timeout=10) as client:
        while time.monotonic() - t0 < 30 and down is None:
            try:
                ok = client.get(settings.service.web_url + "versions").status_code == 200
            except httpx.HTTPError:
                ok = False
            failed += not ok
            if ok and first_ok is None:
                first_ok = time.monotonic() - t0
            if log.read_text(errors="replace").count(marker) > seen_before:
                down = time.monotonic() - t0
    if down is None:
        raise SystemExit(f"HAProxy did not mark {victim} DOWN within 30 s; see {log}")
    return {"down": down, "first_ok": first_ok or float("nan"), "failed": failed}


def _count(settings: Settings, text: str) -> int:
    return StackPaths.of(settings).log(balancer.NAME).read_text(errors="replace").count(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bindery-bench-failover-") as tmp:
        settings = Settings(data_dir=Path(tmp), port=free_port(), redis_port=free_port(), replicas=2,
                            hub_port=free_port(), proxy_port=free_port(), registry_port=free_port(),
                            hub_api_token="no-hub-in-this-benchmark")
        results = []
        try:
            replicas.start(settings, log=lambda m: print(f"  [up] {m}", file=sys.stderr))
            for n in range(args.trials):
                victim = f"replica-{n % 2 + 1}"
                results.append(trial(settings, victim))
                ups = _count(settings, f"{victim} is UP")
                replicas.start(settings, log=lambda m: None)  # `bindery up` brings the dead one back
                wait_until(lambda: _count(settings, f"{victim} is UP") > ups, timeout=30, interval=0.05,
                           what=f"HAProxy taking {victim} back")  # before the next kill, or both could be out
        finally:
            replicas.stop(settings)
    bound = FALL * FASTINTER + INTER
    print(f"{'trial':>5} {'DOWN after s':>13} {'first OK after s':>17} {'failed requests':>16}")
    for n, r in enumerate(results, 1):
        print(f"{n:>5} {r['down']:>13.2f} {r['first_ok']:>17.3f} {r['failed']:>16}")
    down = statistics.median(r["down"] for r in results)
    first = statistics.median(r["first_ok"] for r in results)
    print(f"median: routed around (DOWN) after {down:.2f} s; clients served again after {first:.3f} s; "
          f"failed requests total {sum(r['failed'] for r in results)}")
    print(f"baseline: health-check bound without retries {bound:.2f} s; "
          f"client-visible gap with retries is {first / bound:.3f}× of it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
