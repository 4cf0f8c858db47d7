"""Every hop of a DOI record's requests is checked (the session's real stack and registry): a
file link on the record's own service that redirects to the registry is refused before anything
connects there, a redirect to an allowed origin on a private address is refused by the outbound
policy, an API answer that redirects off the service is refused too, a zip's members count as the
record's files, and a path too long to write is a clear 422."""

from __future__ import annotations

import io
import socket
import threading
import zipfile

from bindery.settings import Settings
from tests.providers.doiservers import SERVICES
from tests.providers.test_links_stack import run


def catalog_requests(settings: Settings) -> int:
    """Requests for the registry's catalog, as the registry itself logged them."""
    log = settings.logs_dir / "registry.log"
    return log.read_text(errors="replace").count("http.request.uri=/v2/_catalog")


class Listener:
    """A TCP listener on 127.0.0.2 (not allowed by the test stack) that counts connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.2", 0))
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.2:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def redirect(to: str):
    return 302, {"Location": to, "Content-Length": "0"}, b""


async def test_a_download_redirect_to_the_registry_is_refused(stack: Settings):
    server, spec = SERVICES["figshare"]({"a.txt": b"x"})
    catalog = f"{stack.registry.url}/v2/_catalog"
    route = server.route
    server.route = lambda path, query, headers: (
        redirect(catalog) if path.startswith("/ndownloader/") else route(path, query, headers))
    before = catalog_requests(stack)
    try:
        events = await run(stack.model_copy(update={"figshare_api_url": server.url}),
                           "figshare", spec)
    finally:
        server.stop()
    assert events[-1].phase == "failed" and events[-1].data()["status_code"] == 422, events[-1]
    assert "not this service's address" in events[-1].message
    assert server.requests["/ndownloader/files/0"] == 1  # the allowed hop was asked...
    assert catalog_requests(stack) == before  # ...and the registry never was


async def test_a_redirect_to_an_allowed_origin_on_a_private_address_is_refused(stack: Settings):
    listener = Listener()
    server, spec = SERVICES["figshare"]({"a.txt": b"x"})
    route = server.route
    server.route = lambda path, query, headers: (
        redirect(f"{listener.origin}/file") if path.startswith("/ndownloader/")
        else route(path, query, headers))
    settings = stack.model_copy(update={"figshare_api_url": server.url,
                                        "doi_download_origins": [listener.origin]})
    try:
        events = await run(settings, "figshare", spec)
    finally:
        server.stop()
        listener.close()
    assert events[-1].phase == "failed" and events[-1].data()["status_code"] == 403, events[-1]
    assert "127.0.0.2" in events[-1].message and "non-public network" in events[-1].message
    assert listener.accepted == 0


async def test_an_api_redirect_off_the_service_is_refused(stack: Settings):
    server, spec = SERVICES["zenodo"]({"a.txt": b"x"})
    catalog = f"{stack.registry.url}/v2/_catalog"
    server.route = lambda path, query, headers: redirect(catalog)
    before = catalog_requests(stack)
    try:
        events = await run(stack.model_copy(update={"zenodo_url": server.url}), "zenodo", spec)
    finally:
        server.stop()
    assert events[-1].phase == "failed" and events[-1].data()["status_code"] == 422, events[-1]
    assert catalog_requests(stack) == before


def zipped(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name in names:
            bundle.writestr(name, b"x")
    return buffer.getvalue()


async def test_zip_members_count_and_long_paths_are_clear(stack: Settings, tmp_path):
    for names, status, words in [
        ([f"f{i}.txt" for i in range(12)], 413, "holds 12 files"),
        (["deep/" + "n" * 300 + ".txt"], 422, "too long"),
        (["/".join(["d" * 200] * 25) + "/x.txt"], 422, "too long"),
    ]:
        server, spec = SERVICES["figshare"]({"record.zip": zipped(names)})
        settings = stack.model_copy(update={"figshare_api_url": server.url, "doi_max_files": 10})
        try:
            events = await run(settings, "figshare", spec)
        finally:
            server.stop()
        assert events[-1].phase == "failed", events[-1]
        assert events[-1].data()["status_code"] == status and words in events[-1].message
    records = stack.data_cache_dir / "records"
    assert not records.exists() or not any(records.iterdir())  # nothing left behind
