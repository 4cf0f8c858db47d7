"""`bindery up`, `bindery down`, `bindery status`: the embedded single-machine stack."""

from __future__ import annotations

import argparse
import json
import time
import sys
from pathlib import Path

from bindery.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", type=Path, default=None,
        help="state folder of the stack (default: BINDERY_DATA_DIR or ~/.bindery)",
    )  # fmt: skip

    up = sub.add_parser("up", parents=[common],
                        help="start the embedded stack (podman x2, registry, hub, web); idempotent")  # fmt: skip
    up.add_argument("--no-web", action="store_true", help="do not start bindery's web service")
    up.add_argument("--no-base-image", action="store_true",
                    help="do not build/push the base image when it is missing")  # fmt: skip
    up.add_argument("--replicas", type=int, default=None, metavar="N",
                    help="web processes to run (default: BINDERY_REPLICAS or 1); more than one run behind "
                    "HAProxy at the public port, with the stack's Redis; `up` again with another N reconciles")
    up.add_argument("--monitoring", action="store_true",
                    help="also start Prometheus scraping the service, with bindery's alert rules "
                    "(port: prometheus_port)")
    up.add_argument("--json", action="store_true", help="print the resulting status as JSON")
    up.set_defaults(func=cmd_up)

    unit = sub.add_parser(
        "systemd-unit", parents=[common],
        help="print a systemd unit that runs `bindery up` at boot and `bindery down` at shutdown "
        "(and write the BINDERY_* settings of this shell to the environment file it reads)")
    unit.add_argument("--write", type=Path, default=None, metavar="FILE",
                      help="write the unit to FILE (e.g. /etc/systemd/system/bindery.service) "
                      "instead of printing it")
    unit.set_defaults(func=cmd_systemd_unit)

    watch = sub.add_parser("supervise", help="run the stack's supervisor in the foreground (`bindery "
                           "up` starts it in the background): restart dead parts of the stack")
    watch.set_defaults(func=cmd_supervise)

    down = sub.add_parser("down", parents=[common],
                          help="stop the embedded stack and remove its server containers")  # fmt: skip
    down.set_defaults(func=cmd_down)

    st = sub.add_parser("status", parents=[common],
                        help="show the embedded stack's parts (exit code 3 when not all run)")  # fmt: skip
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    st.set_defaults(func=cmd_status)


def _settings(args: argparse.Namespace) -> Settings:
    given: dict[str, object] = {}
    if args.data_dir is not None:
        given["data_dir"] = args.data_dir
    if getattr(args, "replicas", None) is not None:
        given["replicas"] = args.replicas
    return Settings(**given)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    from bindery.stack import StackError, up

    try:
        settings = _settings(args)
    except ValueError as exc:  # pydantic's ValidationError: e.g. --replicas 0
        _err(f"bindery up: {exc}")
        return 2
    log = _err if args.json else (lambda m: print(m, flush=True))
    try:
        result = up(settings, log=log, web_service=not args.no_web,
                    build_base=not args.no_base_image, monitoring=args.monitoring)  # fmt: skip
    except StackError as exc:
        _err(f"bindery up failed: {exc}")
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


def cmd_systemd_unit(args: argparse.Namespace) -> int:
    from bindery.stack import systemd_unit

    settings = _settings(args)
    env = systemd_unit.write_env(settings)
    text = systemd_unit.unit_text(settings)
    if args.write is None:
        print(text, end="")
    else:
        args.write.write_text(text)
        print(f"wrote {args.write} (settings in {env}); then: systemctl daemon-reload && "
              "systemctl enable --now bindery", flush=True)
    return 0


def cmd_supervise(args: argparse.Namespace) -> int:
    from bindery.stack import supervisor

    supervisor.main()
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from bindery.stack import down

    down(_settings(args), log=lambda m: print(m, flush=True))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from bindery.stack import status

    from bindery.stack import operator_status

    settings = _settings(args)
    result = status(settings)
    result["service"] = operator_status.overview(settings) if result["running"] else {}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"data dir   {result['data_dir']}")
        print(f"bindery    {result['url']}")
        print(f"hub        {result['hub_url']}")
        b = result["parts"]["base_image"]
        print(f"base image {result['base_image']}  ({b['state']})")
        for name, part in result["parts"].items():
            if name == "base_image":
                continue
            where = part.get("url") or part.get("socket") or ""
            pid = f"pid {part['pid']}" if part.get("pid") else ""
            print(f"  {name:<13} {part['state']:<9} {where}  {pid}")
            if part.get("restarts") or part.get("last_error"):
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(part.get("last_restart", 0)))
                print(f"  {'':<13} restarted by the supervisor {part.get('restarts', 0)} times"
                      + (f", last at {when} UTC" if part.get("last_restart") else "")
                      + (f"; last failure: {part['last_error']}" if part.get("last_error") else ""))
        if len(result["replicas"]) > 1:
            print(f"{len(result['replicas'])} replicas behind the load balancer at {result['url']}")
        for line in operator_status.lines(result["service"]):
            print(line)
    return 0 if result["running"] else 3
