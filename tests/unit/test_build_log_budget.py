"""Kept build logs are bounded in bytes all together, oldest removed first (bindery/builds/build_logs.py)."""

from __future__ import annotations

import os
import time

from bindery.builds.build_logs import BuildLogs
from bindery.builds.executors.base import NAME_PREFIX


def test_kept_logs_stay_under_their_total_bytes_newest_kept(tmp_path):
    unbounded = BuildLogs(tmp_path, max_bytes=10_000, keep_days=30, keep_count=1000)
    names = [f"{NAME_PREFIX}{i:020x}" for i in range(8)]
    now = time.time()
    for i, name in enumerate(names):
        unbounded.keep(name, f"reg/img:{i}", "x" * 9_000, 0)
        os.utime(tmp_path / f"{name}.txt", (now - 100 + i, now - 100 + i))  # ended in this order
    logs = BuildLogs(tmp_path, max_bytes=10_000, keep_days=30, keep_count=1000,
                     total_bytes=35_000)
    assert logs.prune() == 5
    kept = [n for n in names if logs.text(n) is not None]
    assert kept == names[-3:]  # 3 x 9 kB fit in 35 kB; a fourth would not
    assert sum((tmp_path / f"{n}.txt").stat().st_size for n in kept) <= 35_000
    assert all(logs.record(n) is None for n in names[:-3])  # their records went with them


def test_a_single_log_larger_than_the_budget_is_still_kept(tmp_path):
    logs = BuildLogs(tmp_path, max_bytes=10_000, keep_days=30, keep_count=10, total_bytes=1_000)
    name = f"{NAME_PREFIX}{1:020x}"
    logs.keep(name, "reg/img:1", "y" * 5_000, 1)
    assert logs.text(name) is not None  # the newest stays: it is the one someone is reading
