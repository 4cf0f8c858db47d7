"""Read a launch's event stream the way a client does (through bindery's HTTP service)."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from bindery.events import Event
from bindery.web.commands import stream_events
from bindery.settings import Settings
from bindery.engine_clients import docker_client


async def collect(settings: Settings, provider: str, spec: str) -> list[Event]:
    events: list[Event] = []
    async for event in stream_events(settings, provider, spec):
        events.append(event)
        if event.terminal:
            break
    return events


def git_spec(url: str, ref: str) -> str:
    return f"{quote(url, safe='')}/{ref}"


def phases(events: list[Event]) -> list[str]:
    return [e.phase for e in events]


async def open_server(event: Event) -> httpx.Response:
    data = event.data()
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(f"{data['url']}api", params={"token": data["token"]})


def run_side_images(settings: Settings) -> set[str]:
    """The run side's images, by tag and by digest (launches pull bindery's images by digest)."""
    client = docker_client(settings.run_socket, 30)
    try:
        return {ref for image in client.images.list()
                for ref in [*image.tags, *image.attrs.get("RepoDigests", [])]}
    finally:
        client.close()


def pulled(settings: Settings, image: str) -> bool:
    """The run side has `image` (a tag name) by the digest bindery launches it by, or by tag."""
    from bindery.registry_client import repository_of

    return any(ref == image or ref.startswith(f"{repository_of(image)}@sha256:")
               for ref in run_side_images(settings))


def bindery_users(users: list[dict], repo_url: str | None = None) -> list[dict]:
    from bindery.launches.hub_users import PREFIX, repo_key

    prefix = f"{PREFIX}{repo_key(repo_url)}-" if repo_url else PREFIX
    return [u for u in users if u["name"].startswith(prefix)]


def manifest_pushes(settings: Settings, image: str) -> int:
    """Pushes of `image` as the registry itself logged them (not bindery's own counting)."""
    from bindery.image_names import split_image

    _, repo, tag = split_image(image)
    needle = f"http.request.uri=/v2/{repo}/manifests/{tag} "
    log = settings.logs_dir / "registry.log"
    return sum(1 for line in log.read_text(errors="replace").splitlines()
               if "http.request.method=PUT" in line and needle in line
               and "http.response.status=201" in line)
