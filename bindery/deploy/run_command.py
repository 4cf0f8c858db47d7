"""How deploys run a command (through bindery/process_runner.py) and turn its failure into a verdict.

Why one place: the local runtime (venv, pip) and the Helm driver (helm upgrade, rollback, history) must all be
bounded and must all fail the same way, as a ``CheckFailed`` naming the command and carrying its output tail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bindery import process_runner
from bindery.deploy.classify import CheckFailed

OUTPUT_TAIL = 2000


def run_command(argv: Sequence[str], what: str, timeout: float, *, env: Mapping[str, str] | None = None) -> str:
    """Run ``argv`` to completion within ``timeout`` seconds; return its standard output."""
    argv = [str(a) for a in argv]
    try:
        proc = process_runner.run(argv, timeout=timeout, env=env)
    except process_runner.CommandTimeout:
        raise CheckFailed.real(f"{what} did not finish within {timeout:g} s", command=argv) from None
    except FileNotFoundError:
        raise CheckFailed.real(f"{what}: {argv[0]} is not installed", command=argv) from None
    if proc.returncode != 0:
        raise CheckFailed.real(f"{what} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}", command=argv,
                               output=(proc.stdout + proc.stderr)[-OUTPUT_TAIL:])
    return proc.stdout
