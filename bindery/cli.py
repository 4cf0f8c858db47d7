"""The `bindery` command. Each area registers its own subcommands; this module only wires them."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that each define `register(subparsers)`; every subcommand sets `func(args) -> int`.
COMMAND_MODULES = (
    "bindery.web.commands",
    "bindery.settings.commands",
    "bindery.stack.commands",
    "bindery.release.commands",
    "bindery.deploy.commands",
    "bindery.federation.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bindery", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
