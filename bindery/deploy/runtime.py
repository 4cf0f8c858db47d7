"""LocalRuntime: versions of an instance as per-version venvs and processes on this machine, behind the front proxy.

Why per-version venvs: the new version is installed next to the running one without touching it, and a rollback
finds the old venv still there. State lives in ``<deploy_dir>/state/<instance>/`` (not committed: it describes
this machine, not the desired configuration): ``state.json`` (the live slot), ``venvs/<version>/``, ``logs/``,
``front.target`` and ``front.pid``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bindery.deploy.classify import CheckFailed
from bindery.deploy.flow import Slot
from bindery.deploy.front import write_target
from bindery.deploy.instances import InstanceConfig
from bindery.release.store import Artifact

INSTALL_TIMEOUT = 900.0
STOP_TIMEOUT = 15.0


class LocalRuntime:
    def __init__(self, config: InstanceConfig, deploy_dir: Path) -> None:
        self.config = config
        self.dir = deploy_dir / "state" / config.name
        self.dir.mkdir(parents=True, exist_ok=True)

    # -- state ---------------------------------------------------------------------------------
    def _state(self) -> dict:
        try:
            return json.loads((self.dir / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _save(self, **changes: object) -> None:
        state = {**self._state(), **changes}
        tmp = self.dir / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self.dir / "state.json")

    def live(self) -> Slot | None:
        live = self._state().get("live")
        return Slot(**live) if live else None

    # -- install -------------------------------------------------------------------------------
    def venv(self, version: str) -> Path:
        return self.dir / "venvs" / version

    def install(self, artifact: Artifact) -> None:
        venv = self.venv(artifact.version)
        marker = venv / ".installed"
        if marker.is_file() and marker.read_text().strip() == artifact.sha256:
            return
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120,
                       capture_output=True)
        proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                               "-q", artifact.location], capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        if proc.returncode != 0:
            raise CheckFailed.real(f"pip install of {artifact.location} failed", output=proc.stderr[-2000:])
        marker.write_text(artifact.sha256 + "\n")

    # -- processes -----------------------------------------------------------------------------
    def start(self, version: str, port: int) -> Slot:
        venv = self.venv(version)
        command = [str(venv / "bin" / self.config.command[0]), *self.config.command[1:]]
        logs = self.dir / "logs"
        logs.mkdir(exist_ok=True)
        log = open(logs / f"{version}-{port}.log", "ab")
        env = {**os.environ, **self.config.env(port), "VIRTUAL_ENV": str(venv)}
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=self.dir)
        log.close()
        slot = Slot(version, port, proc.pid)
        self._save(**{f"slot_{port}": asdict(slot)})
        return slot

    def running(self, slot: Slot) -> bool:
        if slot.pid is None:
            return False
        try:
            pid, _ = os.waitpid(slot.pid, os.WNOHANG)  # reap if it is our child and exited
            if pid == slot.pid:
                return False
        except ChildProcessError:
            pass
        try:
            os.kill(slot.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self, slot: Slot) -> None:
        """SIGTERM the slot's process group, SIGKILL after a bound."""
        if slot.pid is None or not self.running(slot):
            return
        try:
            os.killpg(slot.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.running(slot) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.running(slot):
            os.killpg(slot.pid, signal.SIGKILL)

    # -- traffic -------------------------------------------------------------------------------
    def switch(self, slot: Slot) -> None:
        write_target(self.dir / "front.target", slot.port)
        self._ensure_front()
        self._save(live=asdict(slot))

    def _ensure_front(self) -> None:
        pid_file = self.dir / "front.pid"
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, 0)
            return
        except (FileNotFoundError, ValueError, ProcessLookupError):
            pass
        log = open(self.dir / "logs" / "front.log", "ab") if (self.dir / "logs").is_dir() else subprocess.DEVNULL
        proc = subprocess.Popen(
            [sys.executable, "-m", "bindery.deploy.front", self.config.public_host, str(self.config.public_port),
             str(self.dir / "front.target")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        pid_file.write_text(str(proc.pid))
