"""`bindery systemd-unit`: a unit systemd itself accepts (`systemd-analyze verify`), which starts
`bindery up` at boot with the operator's BINDERY_* settings from a file only root reads."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path


def test_the_unit_verifies_and_carries_the_settings(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERY_")}
    env.update(BINDERY_HUB_PORT="9123", BINDERY_REGISTRY_PASSWORD='se"cret',
               PYTHONPATH=os.pathsep.join(sys.path))
    unit = tmp_path / "bindery.service"
    done = subprocess.run([sys.executable, "-m", "bindery", "systemd-unit", "--data-dir",
                           str(tmp_path / "data"), "--write", str(unit)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = unit.read_text()
    assert "ExecStart=" in text and text.split("ExecStart=")[1].split("\n")[0].endswith(" up")
    env_file = tmp_path / "data" / "conf" / "bindery.env"
    assert f"EnvironmentFile={env_file}" in text
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    lines = env_file.read_text().splitlines()
    assert 'BINDERY_HUB_PORT="9123"' in lines and 'BINDERY_REGISTRY_PASSWORD="se\\"cret"' in lines
    assert f'BINDERY_DATA_DIR="{tmp_path / "data"}"' in lines
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                              text=True, timeout=60)
    assert verified.returncode == 0, verified.stderr
