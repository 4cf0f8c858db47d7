"""`bindery settings`: every setting with its environment variable, current value and help text."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import SecretStr

from bindery.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("settings", help="list every setting with its help text")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=cmd_settings)
    more = parser.add_subparsers(dest="settings_command")
    carry = more.add_parser(
        "from-binderhub", help="print the bindery settings equivalent to a binderhub_config.py or "
        "the BinderHub chart's values YAML, and what has no equivalent")
    carry.add_argument("file", type=Path, help="binderhub_config.py, or the chart's values .yaml")
    carry.add_argument("--json", action="store_true", help="machine-readable output")
    carry.add_argument("--show-secrets", action="store_true",
                       help="print tokens and secrets instead of a placeholder")
    carry.set_defaults(func=cmd_from_binderhub)


def describe(settings: Settings) -> list[dict[str, object]]:
    rows = []
    for group, name, field, value in settings.flat_items():
        shown = "<secret>" if isinstance(value, SecretStr) else value
        rows.append({"name": name, "group": group, "env": f"BINDERY_{name.upper()}",
                     "value": shown if isinstance(shown, (int, float, bool, list, type(None)))
                     else str(shown), "help": field.description or ""})
    return rows


def cmd_settings(args: argparse.Namespace) -> int:
    rows = describe(Settings())
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        where = f"settings.{row['group']}.{row['name']}" if row["group"] else f"settings.{row['name']}"
        print(f"{row['env']} = {row['value']!r}   ({where})\n    {row['help']}\n")
    return 0


def cmd_from_binderhub(args: argparse.Namespace) -> int:
    from bindery.settings import binderhub_import as bh

    try:
        carried = bh.carry_over(bh.load(args.file))
        bh.checked(carried)
    except bh.ImportFailed as exc:
        print(f"bindery settings from-binderhub: {exc}", file=sys.stderr)
        return 2
    if args.json:
        shown = {k: ("<secret>" if k in bh.SECRETS and not args.show_secrets else v)
                 for k, v in carried.settings.items()}
        print(json.dumps({"settings": shown, "no_equivalent": carried.unmapped,
                          "notes": carried.notes}, indent=2))
        return 0
    print(f"# bindery settings equivalent to {args.file}")
    print("\n".join(bh.env_lines(carried, args.show_secrets)) or "# (none)")
    for note in carried.notes:
        print(f"# note: {note}")
    if carried.unmapped:
        print("# No equivalent in bindery (not carried over):")
        print("\n".join(f"#   {name}" for name in carried.unmapped))
    return 0
