"""LocalRuntime: versions of an instance as per-version venvs and processes on this machine, behind the front proxy.

Why per-version venvs: the new version is installed next to the running one without touching it, and a rollback
finds the old venv still there. State lives in ``<deploy_dir>/state/<instance>/`` (not committed: it describes
this machine, not the desired configuration): ``state.json`` (the live slot), ``venvs/<version>/``, ``logs/``,
``front.target`` and ``front.pid``.

Dependencies (``dependencies = "shared"``, the default): a version's venv holds only the bindery wheel
(``pip install --no-deps``) plus one ``.pth`` line naming the site-packages of the Python that runs the deploy, so
an install takes seconds and needs no package index. The venv's own site-packages comes first on ``sys.path``, so
the version's bindery always wins over whatever bindery that environment holds (a plain path line: that
environment's own ``.pth`` files, e.g. an editable install of a checkout, are not executed). ``"own"`` does a full
install instead.

The instance's stack (build and run engines, registry, hub with its proxy) is shared by both slots and brought up
by ``ensure_stack`` with the instance's own settings only — never the deploying shell's ``BINDERY_*`` variables,
which would make staging talk to prod's hub. Its web service is not started: the front proxy owns the public port.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import sysconfig
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bindery.backoff import WaitTimeout, wait_until
from bindery.deploy.classify import CheckFailed
from bindery.deploy.run_command import run_command
from bindery.deploy.flow import Slot
from bindery.deploy.front import write_target
from bindery.deploy.instances import InstanceConfig
from bindery.artifacts.store import Artifact
from bindery.settings import RoutedInit, Settings
from bindery.stack import balancer, process
from bindery.datadir import StackPaths

INSTALL_TIMEOUT = 900.0
STOP_TIMEOUT = 15.0
FRONT_TIMEOUT = 10.0


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

    def install(self, artifact: Artifact) -> dict[str, Any]:
        venv = self.venv(artifact.version)
        marker = venv / ".installed"
        mode = self.config.dependencies
        if marker.is_file() and marker.read_text().split() == [artifact.sha256, mode]:
            return {"venv": str(venv), "reused": True}
        t0 = time.monotonic()
        python = venv / "bin" / "python"
        if mode == "shared":
            self._run([sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv)], "venv", 120)
            site = Path(self._run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  "venv", 30).strip())
            shared = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
            (site / "bindery-shared-deps.pth").write_text("".join(f"{p}\n" for p in shared))
            self._run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                       "--disable-pip-version-check", "-q", artifact.location], "pip install", INSTALL_TIMEOUT)
        else:
            self._run([sys.executable, "-m", "venv", "--clear", str(venv)], "venv", 120)
            self._run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", artifact.location],
                      "pip install", INSTALL_TIMEOUT)
        marker.write_text(f"{artifact.sha256} {mode}\n")
        return {"venv": str(venv), "dependencies": mode, "seconds": round(time.monotonic() - t0, 1)}

    @staticmethod
    def _run(argv: list[str], what: str, timeout: float) -> str:
        return run_command(argv, what, timeout)

    # -- the instance's stack ------------------------------------------------------------------
    def settings(self) -> Settings:
        """The instance's settings alone (its TOML ``[settings]``), never the caller's environment."""
        return instance_settings(self.config.settings)

    def ensure_stack(self) -> dict[str, Any]:
        """Bring up what of the instance's stack is not running (idempotent); its web part stays off."""
        if not self.config.stack:
            return {"stack": "not managed (stack = false)"}
        from bindery import stack

        logs = self.dir / "logs"
        logs.mkdir(exist_ok=True)
        with open(logs / "stack.log", "a") as log:
            def say(message: str) -> None:
                log.write(message.rstrip("\n") + "\n")
                log.flush()
            try:
                result = stack.up(self.settings(), say, web_service=False)
            except stack.StackError as exc:
                raise CheckFailed.real(f"stack of {self.config.name} did not come up: {exc}",
                                       log=str(logs / "stack.log")) from None
        return {"seconds": result.get("seconds"), "timings": result.get("timings", {}),
                "hub": result.get("hub_url"), "data_dir": result.get("data_dir")}

    def down(self, stack_too: bool = True) -> dict[str, Any]:
        """Stop everything of this instance: both slots, the front proxy and (``stack_too``) its stack."""
        stopped = []
        for key, value in self._state().items():
            if key.startswith("slot_") and isinstance(value, dict):
                slot = Slot(**value)
                if self.running(slot):
                    self.stop(slot)
                    stopped.append(f"{slot.version}@{slot.port}")
        pid_file = self.dir / "front.pid"
        try:
            pid = int(pid_file.read_text())
        except (FileNotFoundError, ValueError):
            pid = None
        if pid is not None and process.alive(pid):
            process.kill_group(pid, STOP_TIMEOUT)
            stopped.append("front")
        pid_file.unlink(missing_ok=True)
        if process.stop(StackPaths(self.dir), balancer.NAME):
            stopped.append("balancer")
        self._save(live=None)
        if stack_too and self.config.stack:
            from bindery import stack

            stack.down(self.settings(), lambda m: None)
            stopped.append("stack")
        return {"stopped": stopped}

    def log_path(self, slot: Slot) -> Path:
        return self.dir / "logs" / f"{slot.version}-{slot.port}.log"

    def log_tail(self, slot: Slot, limit: int = 1500) -> str:
        try:
            return self.log_path(slot).read_text(errors="replace")[-limit:]
        except FileNotFoundError:
            return ""

    # -- processes -----------------------------------------------------------------------------
    def start(self, version: str, port: int) -> Slot:
        venv = self.venv(version)
        command = [str(venv / "bin" / self.config.command[0]), *self.config.command[1:]]
        logs = self.dir / "logs"
        logs.mkdir(exist_ok=True)
        # Only the instance's settings: a BINDERY_* variable of the deploying shell must never leak into it.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("BINDERY_")}
        env = {**inherited, **self.config.env(port), "VIRTUAL_ENV": str(venv)}
        proc = process.spawn(command, logs / f"{version}-{port}.log", env=env, cwd=self.dir)
        slot = Slot(version, port, proc.pid)
        self._save(**{f"slot_{port}": asdict(slot)})
        return slot

    def running(self, slot: Slot) -> bool:
        return slot.pid is not None and process.alive(slot.pid)

    def stop(self, slot: Slot) -> None:
        """SIGTERM the slot's process group, SIGKILL after a bound."""
        if slot.pid is not None and self.running(slot):
            process.kill_group(slot.pid, STOP_TIMEOUT)

    # -- several replicas behind HAProxy -------------------------------------------------------
    def slot_on(self, port: int) -> Slot | None:
        """The running version on replica port ``port``, if any."""
        value = self._state().get(f"slot_{port}")
        slot = Slot(**value) if isinstance(value, dict) else None
        return slot if slot is not None and self.running(slot) else None

    def balance(self, ports: list[int]) -> dict[str, Any]:
        """HAProxy at the public address in front of ``ports`` (bindery/stack/balancer.py; its files in this
        instance's state folder). Restarted only when the ports or settings change, never during a roll."""
        front = instance_settings({**self.config.settings, "data_dir": self.dir, "host": self.config.public_host,
                                   "port": self.config.public_port})
        backends = [(f"replica-{i}", port) for i, port in enumerate(ports, 1)]  # names: see in_rotation

        def listening() -> bool:
            try:
                socket.create_connection((self.config.public_host, self.config.public_port), 0.5).close()
                return True
            except OSError:
                return False

        try:
            info = balancer.start(front, backends, ready=listening, log=lambda message: None)
        except process.StackError as exc:
            raise CheckFailed.real(f"load balancer on {self.config.public_url}: {exc}") from None
        return {"pid": info["pid"], "ports": ports}

    def in_rotation(self, slot: Slot) -> dict[str, Any]:
        """Bounded wait until HAProxy routes to the replica on ``slot.port`` again (its check passed)."""
        paths = StackPaths(self.dir)
        name = f"replica-{self.config.replica_ports.index(slot.port) + 1}"
        t0 = time.monotonic()
        if not balancer.wait_in_rotation(paths, name, self.config.health_timeout):
            raise CheckFailed.real(f"the load balancer does not route to {name} (port {slot.port}) "
                                   f"{self.config.health_timeout:g} s after it became healthy",
                                   states=balancer.server_states(paths), log=str(paths.log(balancer.NAME)))
        return {"replica": name, "seconds": round(time.monotonic() - t0, 2)}

    def set_live(self, slot: Slot) -> None:
        self._save(live=asdict(slot))

    # -- traffic -------------------------------------------------------------------------------
    def switch(self, slot: Slot) -> None:
        write_target(self.dir / "front.target", slot.port)
        self._ensure_front()
        self._save(live=asdict(slot))

    def _ensure_front(self) -> None:
        pid_file = self.dir / "front.pid"
        try:
            if process.alive(int(pid_file.read_text())):
                return
        except (FileNotFoundError, ValueError):
            pass
        proc = process.spawn(
            [sys.executable, "-m", "bindery.deploy.front", self.config.public_host, str(self.config.public_port),
             str(self.dir / "front.target")], self.dir / "logs" / "front.log")
        pid_file.write_text(str(proc.pid))
        # Traffic is switched only once the public port accepts connections (bounded), so the verification that
        # follows never mistakes a front still starting for a refused deploy.
        def listening() -> bool:
            if proc.poll() is not None:
                raise CheckFailed.real(f"front proxy on {self.config.public_url} exited ({proc.returncode})",
                                       log=str(self.dir / "logs" / "front.log"))
            socket.create_connection((self.config.public_host, self.config.public_port), 0.5).close()
            return True

        try:
            wait_until(listening, timeout=FRONT_TIMEOUT, what="the front proxy listening", interval=0.05,
                       errors=(OSError,))
            return
        except WaitTimeout:
            pass
        raise CheckFailed.real(f"front proxy did not listen on {self.config.public_url} within {FRONT_TIMEOUT:g} s",
                               log=str(self.dir / "logs" / "front.log"))


def instance_settings(values: dict[str, Any]) -> Settings:
    """Settings from ``values`` and the defaults only (no ``BINDERY_*`` environment, no .env file)."""
    return _InstanceSettings(**values)


class _InstanceSettings(Settings):
    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,  # noqa: ANN001
                                   file_secret_settings):  # noqa: ANN001, ANN206
        return (RoutedInit(settings_cls, init_settings),)
