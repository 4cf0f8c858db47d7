"""`bindery settings`: every setting with its environment variable, current value and help text."""

from __future__ import annotations

import argparse
import json

from pydantic import SecretStr

from bindery.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("settings", help="list every setting with its help text")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=cmd_settings)


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
