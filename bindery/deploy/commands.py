"""`bindery deploy | promote | bump | canary`: the CLI face of bindery/deploy (parsing and printing only)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from bindery.deploy.report import Report


def register(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--deploy-dir", type=Path, default=None,
                       help="Deploy folder with <instance>.toml files (default: settings.deploy_path).")
        p.add_argument("--store", type=Path, default=None, help="Artifact folder (default: settings.artifacts_path).")

    d = sub.add_parser("deploy", help="Deploy an instance's configured version, verify end to end, roll back on red.")
    d.add_argument("instance")
    d.add_argument("--json", action="store_true", help="Print the report as JSON.")
    d.add_argument("--artifact-timeout", type=float, default=None, help="Seconds to wait for the artifact.")
    common(d)
    d.set_defaults(func=cmd_deploy)

    p = sub.add_parser("promote", help="Give TARGET the version SOURCE verified green, then deploy it.")
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--no-deploy", action="store_true", help="Only change and commit the target's version.")
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=cmd_promote)

    b = sub.add_parser("bump", help="Set an instance's version to the newest release and commit it.")
    b.add_argument("instance")
    b.add_argument("--source-repo", type=Path, default=None,
                   help="bindery checkout to list commits from (default: the one this bindery runs from).")
    b.add_argument("--allow-downgrade", action="store_true")
    common(b)
    b.set_defaults(func=cmd_bump)

    c = sub.add_parser("canary", help="Launch the canary repository against an instance on a schedule.")
    c.add_argument("instance")
    c.add_argument("--interval", type=float, default=300.0, help="Seconds between rounds.")
    c.add_argument("--rounds", type=int, default=None, help="Stop after this many rounds (default: forever).")
    c.add_argument("--alert-after", type=int, default=3, help="Log loudly after this many failures in a row.")
    c.add_argument("--metrics-port", type=int, default=0, help="Serve Prometheus metrics on this port (0: off).")
    common(c)
    c.set_defaults(func=cmd_canary)


def _dirs(args: argparse.Namespace) -> tuple[Path, Path]:
    from bindery.settings import Settings

    settings = Settings()
    return args.deploy_dir or settings.deploy_path, args.store or settings.artifacts_path


def _print_report(report: Report, as_json: bool) -> int:
    print(report.to_json() if as_json else report.to_text())
    return 0 if report.green else 1


def _deploy(deploy_dir: Path, store_dir: Path, name: str, timeout: float | None, as_json: bool) -> int:
    from bindery.deploy import instances
    from bindery.deploy.flow import Deployer
    from bindery.deploy.local_runtime import LocalRuntime
    from bindery.deploy.verify import http_client
    from bindery.artifacts.store import FolderStore
    from bindery.settings import Settings

    config = instances.load(deploy_dir, name)
    instances.load_all(deploy_dir)  # refuses instances that share a port or a data folder (ConfigError)
    if not config.version:
        print(f"bindery deploy: {name} has no version; run `bindery bump {name}`", file=sys.stderr)
        return 2
    wait = timeout if timeout is not None else Settings().artifact_wait_timeout
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    with http_client() as client:
        if config.kind == "helm":
            from bindery.deploy.helmflow import HelmDeployer, helm_release

            deployer: Deployer = HelmDeployer(config, FolderStore(store_dir), helm_release(config), client, deploy_dir,
                                              wait, say=say)
        else:
            deployer = Deployer(config, FolderStore(store_dir), LocalRuntime(config, deploy_dir), client, deploy_dir,
                                wait, say=say)
        report = deployer.deploy()
    reports = deploy_dir / "state" / name / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"{report.started.replace(':', '')}-{report.action}.json").write_text(report.to_json())
    return _print_report(report, as_json)


def cmd_deploy(args: argparse.Namespace) -> int:
    from bindery.deploy.instances import ConfigError

    deploy_dir, store_dir = _dirs(args)
    try:
        return _deploy(deploy_dir, store_dir, args.instance, args.artifact_timeout, args.json)
    except ConfigError as exc:
        print(f"bindery deploy: {exc}", file=sys.stderr)
        return 2


def cmd_promote(args: argparse.Namespace) -> int:
    from bindery.deploy.instances import ConfigError
    from bindery.deploy.promote import PromotionRefused, promote

    deploy_dir, store_dir = _dirs(args)
    try:
        result = promote(deploy_dir, args.source, args.target)
    except (PromotionRefused, ConfigError) as exc:
        print(f"bindery promote: {exc}", file=sys.stderr)
        return 3
    print(f"{args.target}: {result.previous or '(none)'} → {result.version} "
          f"(verified green on {args.source} at {result.verdict.time})", file=sys.stderr)
    if args.no_deploy:
        return 0
    return _deploy(deploy_dir, store_dir, args.target, None, args.json)


def cmd_bump(args: argparse.Namespace) -> int:
    from bindery.deploy.bump import BumpRefused, bump
    from bindery.deploy.instances import ConfigError
    from bindery.artifacts.store import FolderStore
    from bindery.versioning import PACKAGE_DIR

    deploy_dir, store_dir = _dirs(args)
    source = args.source_repo or (PACKAGE_DIR.parent if (PACKAGE_DIR.parent / ".git").exists() else None)
    try:
        result = bump(deploy_dir, args.instance, FolderStore(store_dir), source, args.allow_downgrade)
    except (BumpRefused, ConfigError) as exc:
        print(f"bindery bump: {exc}", file=sys.stderr)
        return 3
    print(result.message if result.deploy_commit else result.message + "\n")
    return 0


def cmd_canary(args: argparse.Namespace) -> int:
    import logging

    from prometheus_client import start_http_server

    from bindery.deploy import instances
    from bindery.deploy.canary import Canary
    from bindery.deploy.verify import Target, http_client

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    deploy_dir, _ = _dirs(args)
    config = instances.load(deploy_dir, args.instance)
    if not config.canary:
        print(f"bindery canary: {args.instance} has no canary configured", file=sys.stderr)
        return 2
    target = Target(config.public_url, config.version, config.canary, config.launch_timeout)
    with http_client() as client:
        canary = Canary(args.instance, target, client, alert_after=args.alert_after)
        if args.metrics_port:
            start_http_server(args.metrics_port, addr="127.0.0.1", registry=canary.metrics.registry)
        try:
            canary.run(args.interval, threading.Event(), args.rounds)
        except KeyboardInterrupt:
            return 130
    print(json.dumps({"instance": args.instance, "consecutive_failures": canary.failures}))
    return 0 if canary.failures == 0 else 1
