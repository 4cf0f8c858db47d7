"""Every issue-11 figure in one command, on ONE bench stack, printed as one table.

Each bench module below exposes ``STACK_OVERRIDES`` (settings it needs on the shared stack) and
``async figures(settings, git, quick) -> list[Figure]``; this merges their overrides, brings one
stack up, runs them one after the other and prints every figure with its limit measured in the same
run, the ratio and the target (bench/figures.py). A module missing from this branch, or without
``figures`` yet, is skipped with a line saying so; one that fails is reported and the rest still run.

Modules in ``OWN_STACK`` bring up a stack of their own instead (``async figures_own(quick, repos)``):
their settings cannot be shared (the soak's small store budgets). They run only when named in --only.

Usage: .venv/bin/python bench/run.py [--quick] [--only build_start,launch]
       .venv/bin/python bench/run.py --only soak --repos 300
Full mode is sized for < 15 min on 2 cores; --quick for development (minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import time
import traceback
from types import ModuleType

from common import bench_stack
from figures import Figure, table

# Module name -> what it measures (issue 11), in the order they run: launches before the crowds, so
# a crowd's leftovers never slow a single launch down.
MODULES = {
    "build_start": "fresh builds (point 4)",
    "launch": "cached launches (point 2)",
    "first_start": "first launches, the server's own start (issue 24)",
    "pool": "warm pools (point 1)",
    "concurrency": "crowds (point 3)",
}
# Run only when asked for (--only), each on a stack of its own, after the shared stack is down.
OWN_STACK = {
    "soak": "storage soak: N repositories under store budgets of a few GiB (issue 21)",
}
ALL = {**MODULES, **OWN_STACK}


def load(names: list[str]) -> tuple[dict[str, ModuleType], list[str]]:
    """The modules that have figures; the skip lines for those that do not."""
    found, skipped = {}, []
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise  # the module is here but an import inside it is broken: say so loudly
            skipped.append(f"skipped bench/{name}.py ({ALL[name]}): not on this branch")
            continue
        entry = "figures_own" if name in OWN_STACK else "figures"
        if not callable(getattr(module, entry, None)):
            skipped.append(f"skipped bench/{name}.py ({ALL[name]}): it has no {entry}() yet")
            continue
        found[name] = module
    return found, skipped


def merged_overrides(modules: dict[str, ModuleType]) -> dict[str, object]:
    """One stack for all: every module's overrides together; two modules wanting different values
    for one setting is a bench bug, refused before anything starts."""
    merged: dict[str, object] = {}
    owner: dict[str, str] = {}
    for name, module in modules.items():
        for key, value in getattr(module, "STACK_OVERRIDES", {}).items():
            if key in merged and merged[key] != value:
                raise SystemExit(f"bench/{name}.py wants {key}={value!r} but bench/{owner[key]}.py "
                                 f"wants {merged[key]!r}; they cannot share one stack")
            merged[key], owner[key] = value, name
    return merged


async def run(modules: dict[str, ModuleType], quick: bool, repos: int | None
              ) -> tuple[list[Figure], list[str]]:
    figures: list[Figure] = []
    problems: list[str] = []

    async def one(name: str, measure) -> None:
        t0 = time.monotonic()
        print(f"== bench/{name}.py: {ALL[name]}", file=sys.stderr, flush=True)
        try:
            figures.extend(await measure)
        except Exception:
            problems.append(f"bench/{name}.py failed:\n{traceback.format_exc()}")
            return
        print(f"== bench/{name}.py done in {time.monotonic() - t0:.0f} s", file=sys.stderr)

    shared = {n: m for n, m in modules.items() if n not in OWN_STACK}
    if shared:
        with bench_stack(**merged_overrides(shared)) as (settings, git):
            for name, module in shared.items():
                await one(name, module.figures(settings, git, quick))
    for name, module in modules.items():
        if name in OWN_STACK:
            await one(name, module.figures_own(quick, repos))
    return figures, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller crowds")
    parser.add_argument("--only", default="", help="comma-separated module names, e.g. launch")
    parser.add_argument("--repos", type=int, default=None,
                        help="repositories the soak builds and launches (default: bench/soak.py's)")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(MODULES)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        parser.error(f"unknown bench module(s) {unknown}; known: {', '.join(ALL)}")
    t0 = time.monotonic()
    modules, skipped = load(names)
    for line in skipped:
        print(line)
    if not modules:
        print("nothing to run")
        return 1
    figures, problems = asyncio.run(run(modules, args.quick, args.repos))
    print()
    print(table(figures) if figures else "no figures")
    for line in skipped:
        print(line)
    for problem in problems:
        print(problem)
    print(f"\n{'quick' if args.quick else 'full'} run, {len(figures)} figures in "
          f"{time.monotonic() - t0:.0f} s (stack up and down included)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
