"""bindery's web service (`bindery serve`) as a background process of the stack.

The settings reach it as ``BINDERY_*`` environment variables (so the process sees exactly the settings
`bindery up` was given, whatever their source).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import SecretStr

from bindery.settings import Settings
from bindery._version import __version__
from bindery.stack import process
from bindery.datadir import StackPaths

NAME = "web"


def settings_env(settings: Settings) -> dict[str, str]:
    """``BINDERY_<FIELD>`` for every setting with a value (lists/dicts as JSON)."""
    env: dict[str, str] = {}
    for _group, field, _info, value in settings.flat_items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, (list, dict, tuple)):
            # secrets inside (e.g. git_credentials' tokens) as their values, not as '**********'
            text = json.dumps(value, default=lambda v: v.get_secret_value()
                              if isinstance(v, SecretStr) else str(v))
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, Path):
            text = str(value)
        else:
            text = str(value)
        env[f"BINDERY_{field.upper()}"] = text
    return env


def local_url(settings: Settings) -> str:
    """Where this machine reaches the web service (0.0.0.0 → 127.0.0.1)."""
    host = settings.service.host
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.service.port}"


def ping(settings: Settings, timeout: float = 2.0) -> bool:
    try:
        r = httpx.get(local_url(settings) + "/versions", timeout=timeout)
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def start(settings: Settings, log: Callable[[str], None] = print, *, name: str = NAME,
          extra_env: dict[str, str] | None = None, meta: dict[str, object] | None = None) -> dict:
    """Start `bindery serve` with ``settings`` (plus ``extra_env``) as process ``name`` unless it runs.

    A running one started with other settings or an older bindery is restarted (``bindery up`` after an
    upgrade); this waits until it answers, so restarting replicas one after another is a rolling restart.
    """
    paths = StackPaths.of(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERY_")}
    child_env = {**settings_env(settings), **(extra_env or {})}
    env.update(child_env)
    argv = [sys.executable, "-m", "bindery", "serve"]
    info = process.start(
        paths, name, argv, env=env, ready=lambda: ping(settings),
        timeout=settings.stack.stack_wait_timeout, what=f"bindery web service ({local_url(settings)})",
        # The code's version is part of it: `bindery up` after an upgrade restarts the service.
        fingerprint=hashlib.sha256(json.dumps([child_env, __version__],
                                              sort_keys=True).encode()).hexdigest()[:16],
        meta=meta, log=log,
    )  # fmt: skip
    return {**info, "url": settings.service.web_url, "state": "running"}


def status(settings: Settings) -> dict:
    ok = ping(settings, 1.0)
    out = {"url": settings.service.web_url, "state": "running" if ok else "stopped"}
    out.update(process.state(StackPaths.of(settings), NAME))
    return out


def stop(settings: Settings) -> bool:
    return process.stop(StackPaths.of(settings), NAME)
