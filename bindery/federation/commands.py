"""`bindery federate CONFIG`: run the federation's front (bindery/federation/redirector.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "federate", help="front several Binder sites (bindery or BinderHub) as one, as "
        "mybinder.org's federation redirector does")
    parser.add_argument("config", type=Path, help="JSON: {\"hosts\": {name: {\"url\", \"weight\", "
                        "\"prime\"}}, \"check\": {...}, \"pod_headroom\": 10, ...}")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on")
    parser.set_defaults(func=cmd_federate)


def cmd_federate(args: argparse.Namespace) -> int:
    import uvicorn

    from bindery.federation.member_health import ConfigError, FederationConfig
    from bindery.federation.redirector import create_app

    try:
        config = FederationConfig.load(args.config)
    except ConfigError as exc:
        print(f"bindery federate: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")
    return 0
