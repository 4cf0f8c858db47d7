"""Prometheus beside the stack (`bindery up --monitoring`): scrapes bindery's /metrics with the
shipped alert rules loaded (bindery/stack/monitoring/), its data in <data_dir>/prometheus.

Debian's ``prometheus`` package provides the server; the dashboard in the same folder is for a
Grafana pointed at this Prometheus.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx

from bindery.datadir import StackPaths, write_if_changed
from bindery.settings import Settings
from bindery.stack import process
from bindery.stack.web_service import local_url

NAME = "prometheus"
MONITORING = Path(__file__).resolve().parent / "monitoring"
RULES = MONITORING / "alerts.yml"
DASHBOARD = MONITORING / "dashboard.json"


def url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.stack.prometheus_port}"


def write_config(settings: Settings, paths: StackPaths) -> Path:
    target = local_url(settings).removeprefix("http://")
    every = f"{settings.stack.prometheus_scrape_seconds:g}s"
    config = {  # JSON is YAML: no YAML writer needed
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "bindery", "metrics_path": "/metrics",
                            "static_configs": [{"targets": [target]}]}],
    }
    path = paths.conf / "prometheus.yml"
    write_if_changed(path, json.dumps(config, indent=2) + "\n")
    return path


def ping(settings: Settings, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{url(settings)}/-/ready", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def start(settings: Settings, log: Callable[[str], None] = print) -> dict:
    exe = shutil.which("prometheus")
    if exe is None:
        raise process.StackError("prometheus is not installed (Debian package 'prometheus'; "
                                 "scripts/install.sh installs it)")
    paths = StackPaths.of(settings)
    conf = write_config(settings, paths)
    data = paths.data_dir / "prometheus"
    argv = [exe, f"--config.file={conf}", f"--storage.tsdb.path={data}",
            f"--storage.tsdb.retention.time={settings.stack.prometheus_retention_days:g}d",
            f"--web.listen-address=127.0.0.1:{settings.stack.prometheus_port}"]
    info = process.start(
        paths, NAME, argv, ready=lambda: ping(settings, 1.0),
        timeout=settings.stack.stack_wait_timeout, what=f"prometheus on {url(settings)}",
        fingerprint=hashlib.sha256((" ".join(argv) + conf.read_text() + RULES.read_text())
                                   .encode()).hexdigest()[:16], log=log)
    return {**info, "url": url(settings), "state": "running"}


def status(settings: Settings) -> dict:
    out = {"url": url(settings), "state": "running" if ping(settings, 1.0) else "stopped"}
    out.update(process.state(StackPaths.of(settings), NAME))
    return out


def stop(settings: Settings) -> bool:
    return process.stop(StackPaths.of(settings), NAME)
