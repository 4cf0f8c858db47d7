"""Cost of the per-launch safety checks, in isolation, against the step they guard.

Times (median of --runs) the outbound check of a repository URL (an address literal, and a host name
resolved through /etc/hosts), the repository's normal form, and the door's rule targets, and, as the
baseline in the same run, one `git ls-remote` of a local repository (the cheapest network step of every
launch). Prints medians in ms and each check's share of the baseline.
Usage: .venv/bin/python bench/checks.py [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bindery.git_commands import ls_remote  # noqa: E402
from bindery.outbound import OutboundPolicy  # noqa: E402
from bindery.repoid import identify  # noqa: E402
from bindery.settings import Settings  # noqa: E402
from bindery.web.door import Door  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.gitserver import GitServer  # noqa: E402


async def median_ms(call, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = call()
        if asyncio.iscoroutine(result):
            await result
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        git = GitServer(Path(tmp), free_port())
        git.start()
        try:
            _, url = git.create("bench", {"README": "x"})
            settings = Settings(github_url=git.base_url, repo_allowed_networks=["127.0.0.1/32"])
            policy = OutboundPolicy(settings.providers.repo_allowed_networks, 5)
            named = url.replace("127.0.0.1", "localhost")
            door = Door(settings)
            spec = f"{quote(url, safe='')}/main"
            rows = {
                "outbound check, address literal": lambda: policy.check_url(url),
                "outbound check, name via /etc/hosts": lambda: policy.check_url(named),
                "normal form (identify)": lambda: identify(settings, url),
                "door rule targets (parse + forms)": lambda: door.rules.targets("git", spec),
            }
            baseline = await median_ms(lambda: ls_remote(url, "main", 10), max(20, runs // 10))
            print(f"baseline git ls-remote (local git daemon): median {baseline:.3f} ms")
            total = 0.0
            for name, call in rows.items():
                ms = await median_ms(call, runs)
                if name != "outbound check, address literal":
                    total += ms
                print(f"{name:40s} median {ms:8.4f} ms  = {ms / baseline:6.2%} of the ls-remote")
            print(f"added per launch (named host): {total:.3f} ms = {total / baseline:.2%} of the ls-remote")
        finally:
            git.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    asyncio.run(main(parser.parse_args().runs))
