"""The one way deploys run a command: an argument list (never a shell), a timeout, and a verdict on failure.

Why one place: the local runtime (venv, pip) and the Helm driver (helm upgrade, rollback, history) must all be
bounded and must all fail the same way, as a ``CheckFailed`` naming the command and carrying its output tail.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence

from bindery.deploy.classify import CheckFailed

OUTPUT_TAIL = 2000


def run_command(argv: Sequence[str], what: str, timeout: float, *, env: Mapping[str, str] | None = None) -> str:
    """Run ``argv`` to completion within ``timeout`` seconds; return its standard output."""
    argv = [str(a) for a in argv]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=dict(env) if env is not None else None)
    except subprocess.TimeoutExpired:
        raise CheckFailed.real(f"{what} did not finish within {timeout:g} s", command=argv) from None
    except FileNotFoundError:
        raise CheckFailed.real(f"{what}: {argv[0]} is not installed", command=argv) from None
    if proc.returncode != 0:
        raise CheckFailed.real(f"{what} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}", command=argv,
                               output=(proc.stdout + proc.stderr)[-OUTPUT_TAIL:])
    return proc.stdout
