"""The shipped alert rules are valid and fire when they should (Debian's promtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RULES = HERE.parent.parent / "bindery" / "stack" / "monitoring" / "alerts.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: scripts/install.sh installs Debian's prometheus package")
    return path


def test_rules_are_valid(promtool: str):
    proc = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "8 rules found" in proc.stdout


def test_rules_fire_on_seeded_series_and_stay_quiet_otherwise(promtool: str):
    proc = subprocess.run([promtool, "test", "rules", "alerts_test.yml"], cwd=HERE,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
