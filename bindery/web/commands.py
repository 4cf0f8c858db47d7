"""`bindery serve` (the web service) and `bindery launch` (a launch from the terminal)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.text import Text

from bindery import event_stream, http_clients
from bindery.launches import pipeline
from bindery.launches.services import Services
from bindery.events import Event, failed
from bindery.settings import Settings

URL_SCHEMES = ("http://", "https://", "git://")


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run bindery's web service in the foreground")
    serve.set_defaults(func=cmd_serve)

    launch = sub.add_parser("launch", help="launch a repository and print its server URL")
    launch.add_argument("target", help="git URL, local folder, or provider/spec (gh/org/repo/ref)")
    launch.add_argument("--ref", default=None, help="branch, tag or commit (default HEAD)")
    launch.add_argument("--json", action="store_true", help="print the ready event as JSON last")
    launch.set_defaults(func=cmd_launch)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bindery.web.app import create_app
    from bindery.web.connection_guard import guarded_protocol
    from bindery.web.drain import DrainingServer
    from bindery import service_log

    settings = Settings()
    service_log.configure(settings.service.log_format, settings.service.log_level)
    app = create_app(settings)

    def drain():
        hand_over = app.state.bindery.get("drain")
        return hand_over() if hand_over is not None else None

    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from any 127.0.0.1 peer;
    # the door decides who the client is, trusting only settings.security.trusted_proxies.
    # http: uvicorn's h11 protocol that also sheds silent or half-sent connections and caps one
    # client's connections (bindery/web/connection_guard.py).
    door = settings.security
    config = uvicorn.Config(app, host=settings.service.host, port=settings.service.port,
                            log_level=settings.service.log_level, timeout_graceful_shutdown=5, proxy_headers=False,
                            log_config=service_log.config(settings.service.log_format,
                                                          settings.service.log_level),
                            http=guarded_protocol(door.header_timeout_seconds,
                                                  door.max_connections_per_client,
                                                  door.trusted_proxies),
                            timeout_keep_alive=door.idle_timeout_seconds)
    DrainingServer(config, drain, settings.service.shutdown_seconds).run()
    return 0


def parse_target(target: str, ref: str | None) -> tuple[str, str]:
    """(provider, spec) for what a person typed."""
    if target.startswith(URL_SCHEMES):
        return "git", f"{quote(target, safe='')}/{ref or 'HEAD'}"
    if Path(target).expanduser().is_dir():
        return "local", target
    provider, _, spec = target.partition("/")
    if not spec:
        raise SystemExit(f"bindery: {target!r} is not a URL, a folder, or provider/spec")
    if not ref:
        return provider, spec
    from bindery.providers import PROVIDERS

    cls = PROVIDERS.get(provider)
    if cls is None or cls.repo_parts is None:
        raise SystemExit(f"bindery: --ref does not apply to {provider!r} specs")
    # The repository is the spec's first repo_parts segments; --ref replaces or adds the ref.
    repo = spec.strip("/").split("/", cls.repo_parts)[:cls.repo_parts]
    if len(repo) < cls.repo_parts:
        raise SystemExit(f"bindery: {target!r} does not name a repository, e.g. "
                         f"{provider}/{cls.spec_example}")
    return provider, "/".join([*repo, quote(ref, safe="") if cls.escape_repo else ref])


def _terminal(message: event_stream.Message) -> bool:
    return Event.model_validate_json(message.data).terminal


async def stream_events(settings: Settings, provider: str, spec: str,
                        client: httpx.AsyncClient | None = None) -> AsyncIterator[Event]:
    """Follow a launch through the running service's event stream (on `client` if given: making
    one costs ≈ 30 ms, its TLS context, which a benchmark timing the request must not count)."""
    url = f"{settings.service.web_url.rstrip('/')}/build/{provider}/{spec}"
    timeout = http_clients.bounds(10.0, read=max(60.0, settings.service.keepalive_seconds * 3))
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(http_clients.async_client(timeout=timeout))
        try:
            # A stream that breaks mid-launch (a proxy's timeout, a replica restarting) is resumed with
            # Last-Event-ID, as a browser does: the same launch goes on, nothing is built or started twice.
            async for message in event_stream.follow(client, url, timeout=timeout, done=_terminal):
                yield Event.model_validate_json(message.data)
        except event_stream.StreamRefused as exc:
            yield failed(f"bindery answered HTTP {exc.status_code} at {url}")
        except event_stream.StreamBroken as exc:
            yield failed(f"Lost bindery's event stream: {exc}")
        except httpx.HTTPError as exc:
            yield failed(f"Could not reach bindery at {settings.service.web_url} ({type(exc).__name__}); "
                         "is it up? Try `bindery up`.")


async def local_events(settings: Settings, folder: str) -> AsyncIterator[Event]:
    services = Services.create(settings)
    try:
        async for event in pipeline.launch(services, "local", folder, allow_local=True):
            yield event
    finally:
        await services.aclose()


async def run_launch(args: argparse.Namespace) -> int:
    settings = Settings()
    provider, spec = parse_target(args.target, args.ref)
    console = Console(stderr=True)
    events = local_events(settings, spec) if provider == "local" else \
        stream_events(settings, provider, spec)
    last: Event | None = None
    with console.status("starting...") as status:
        async for event in events:
            last = event
            status.update(f"[bold]{event.phase}[/]")
            text = event.message.rstrip()
            if text and event.phase not in ("ready", "failed"):
                console.print(Text.assemble((f"{event.phase:>9} ", "dim"), text), soft_wrap=True)
            if event.terminal:
                break
    if last is None or last.phase != "ready":
        message = last.message if last else "the event stream ended without a result"
        console.print(Text.assemble(("failed: ", "bold red"), message), soft_wrap=True)
        if args.json and last is not None:
            print(last.to_json())
        return 1
    data = last.data()
    for sentence in data.get("notice") or []:  # what differs from what the repository asks
        console.print(Text.assemble(("   notice ", "bold yellow"), str(sentence)), soft_wrap=True)
    console.print(Text.assemble(("ready: ", "bold green"), "open the URL below"), soft_wrap=True)
    print(json.dumps(data) if args.json else f"{data['url']}?token={data['token']}")
    if data.get("resume_url") and not args.json:  # the same home on a new server, later
        console.print(Text.assemble(("   resume ", "bold"), f"{data['resume_url']} (keep it: it is "
                                    "the only way back to this server's files)"), soft_wrap=True)
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    return asyncio.run(run_launch(args))


