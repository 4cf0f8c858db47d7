"""The base image's trims of a server's start (bindery/stack/base/server_trims.py), applied to copies of
the packages bindery pins (the hub's own jupyterhub and jsonschema: the versions the base image
installs, and aiohttp): a server's imports load neither the hub's database layer nor the iri
grammars, and make no aiohttp TLS contexts; all still load, and work, where they are used; and `--undo`
gives the packages back as they ship."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from bindery.stack import base_image
from tests.base_recipe import server_trims

# What jupyterhub.singleuser's modules import from the hub package, and what jupyter_server imports
# that reaches jsonschema's format checkers (the server extension itself needs jupyter_server, which
# the hub's environment does not have; the image test covers the whole start).
SERVER_IMPORTS = ("jupyterhub.services.auth", "jupyterhub.log", "jupyterhub.utils",
                  "jupyterhub.metrics", "jupyterhub.httpclient", "jupyter_events.logger")
# Defines deferred(): the deferred modules loaded so far (the build's own check uses the same).
DEFERRED = "import sys\n" f"def deferred():\n    return {server_trims.DEFERRED_LOADED}\n"
IRI_SAMPLES = [("iri", "https://例え.テスト/ü?q=1#frag"), ("iri", "http://exa mple.org/"),
               ("iri", "relative/path"), ("iri", 42), ("iri-reference", "../ü/x?y#z"),
               ("iri-reference", "http://[::1"), ("uri", "https://example.org/a")]


def copy_of_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    for package in server_trims.EDITS:
        # with its bytecode (valid while the sources' times are kept: the edited files recompile)
        shutil.copytree(server_trims.site_dir() / package, site / package)
    return site


@pytest.fixture
def edited(tmp_path: Path) -> Path:
    site = copy_of_site(tmp_path)
    server_trims.edit(site, tmp_path / "originals")
    return site


def run(site: Path, code: str, argv: list[str] = ()) -> dict:
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                            timeout=120, env={"PYTHONPATH": str(site)}, cwd=site)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_copies_are_the_versions_the_base_image_pins():
    """The edits are checked here against the same texts the base image's build meets."""
    assert metadata.version("jupyterhub") == base_image.hub_version()
    assert metadata.version("jsonschema") == base_image.JSONSCHEMA_VERSION
    assert metadata.version("aiohttp") == base_image.AIOHTTP_VERSION


def test_a_server_s_imports_leave_the_deferred_modules_out(edited: Path):
    out = run(edited, DEFERRED + f"import {', '.join(SERVER_IMPORTS)}, json, jupyterhub, jsonschema\n"
              "print(json.dumps({'files': [jupyterhub.__file__, jsonschema.__file__], "
              "'loaded': deferred()}))")
    assert all(f.startswith(str(edited)) for f in out["files"])  # the edited copies, not the installed
    assert out["loaded"] == []


def test_the_same_imports_load_them_unedited(tmp_path: Path):
    """The edits are what make the difference (the check above could not pass by accident)."""
    site = copy_of_site(tmp_path)
    out = run(site, DEFERRED + f"import {', '.join(SERVER_IMPORTS)}, json\n"
              "print(json.dumps({'loaded': deferred()}))")
    for module in ("sqlalchemy", "jupyterhub.orm", "rfc3987_syntax", "lark",
                   server_trims.TLS_CONTEXTS):
        assert module in out["loaded"], out["loaded"]


CHECK_IRIS = f"""
import json, sys, jsonschema
samples = {IRI_SAMPLES!r}
before = 'rfc3987_syntax' in sys.modules
checker = jsonschema.FormatChecker()
verdicts = [checker.conforms(value, fmt) for fmt, value in samples]
validator = jsonschema.Draft202012Validator(
    {{'type': 'object', 'properties': {{'home': {{'type': 'string', 'format': 'iri'}}}}}},
    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
errors = [e.message for e in validator.iter_errors({{'home': 'http://exa mple.org/'}})]
print(json.dumps({{'before': before, 'after': 'rfc3987_syntax' in sys.modules,
                  'iri': 'iri' in checker.checkers, 'verdicts': verdicts, 'errors': errors}}))
"""


def test_iri_checks_work_as_shipped_and_build_their_grammars_on_first_use(edited: Path,
                                                                          tmp_path: Path):
    trimmed = run(edited, CHECK_IRIS)
    shipped = run(copy_of_site(tmp_path / "unedited"), CHECK_IRIS)
    assert trimmed["iri"] is True  # the checkers are registered, as they ship
    assert trimmed["before"] is False and trimmed["after"] is True  # imported by the first check
    assert shipped["before"] is True
    assert trimmed["verdicts"] == shipped["verdicts"]
    assert trimmed["verdicts"][:2] == [True, False]  # the samples tell valid from invalid
    assert trimmed["errors"] == shipped["errors"] == ["'http://exa mple.org/' is not a 'iri'"]


FETCH_HTTPS = """
import asyncio, http.server, json, ssl, sys, threading
import aiohttp, aiohttp.connector as connector


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = tls.wrap_socket(server.socket, server_side=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"https://127.0.0.1:{server.server_port}/"
made = lambda: getattr(getattr(connector, "_default_ssl_context", None), "cache_info", lambda: None)()


async def fetch():
    out = {"made_before": getattr(made(), "currsize", None)}
    async with aiohttp.ClientSession() as session:
        try:  # the default, verified context: a self-signed certificate is refused
            await session.get(url)
            out["verified"] = "answered"
        except aiohttp.ClientConnectorCertificateError:
            out["verified"] = "refused"
        async with session.get(url, ssl=False) as response:  # the unverified one
            out["unverified"] = [response.status, await response.text()]
        async with session.get(url, ssl=False) as response:
            out["again"] = response.status
    out["made_after"] = getattr(made(), "currsize", None)
    out["modes"] = [connector._SSL_CONTEXT_VERIFIED.verify_mode == ssl.CERT_REQUIRED,
                    connector._SSL_CONTEXT_UNVERIFIED.verify_mode == ssl.CERT_NONE]
    out["same"] = connector._SSL_CONTEXT_VERIFIED is connector._SSL_CONTEXT_VERIFIED
    return out


print(json.dumps(asyncio.run(fetch())))
"""


def test_aiohttp_makes_its_tls_contexts_on_first_use_and_they_work(edited: Path, tmp_path: Path):
    """Deferred, aiohttp's default TLS contexts are made by the first HTTPS request, once each, and
    behave as shipped: the verified one refuses a self-signed certificate, the unverified one
    takes it."""
    from bindery.stack.registry_tokens import make_key

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    make_key(key, cert)
    argv = [str(cert), str(key)]
    trimmed = run(edited, FETCH_HTTPS, argv)
    shipped = run(copy_of_site(tmp_path / "unedited"), FETCH_HTTPS, argv)
    assert trimmed["made_before"] == 0 and trimmed["made_after"] == 2
    assert shipped["made_before"] is None  # no deferral there: made at import
    for out in (trimmed, shipped):
        assert out["verified"] == "refused"
        assert out["unverified"] == [200, "ok"] and out["again"] == 200
        assert out["modes"] == [True, True] and out["same"] is True


def test_the_database_layer_still_loads_and_works_where_used(edited: Path):
    code = DEFERRED + """
import asyncio, json, logging
from unittest import mock
from jupyterhub import scopes, utils, log, metrics
checks = {}
# scopes: without a db nothing is loaded; the hub's classes are the real ones when used
checks['intersect'] = sorted(scopes._intersect_expanded_scopes({'read:users'}, {'read:users'}))
checks['before_use'] = deferred()
from jupyterhub import orm
checks['same_orm'] = scopes.orm.User is orm.User and metrics.orm.Spawner is orm.Spawner
# utils.catch_db_error still catches SQLAlchemy's errors and rolls back
import sqlalchemy.exc
class Handler:
    log = logging.getLogger('test')
    db = mock.Mock()
    @utils.catch_db_error
    def fails(self):
        raise sqlalchemy.exc.OperationalError('stmt', {}, Exception('db gone'))
h = Handler()
asyncio.run(h.fails())
checks['rolled_back'] = h.db.rollback.called
# log.log_request still logs the hub's health checks at debug level
from jupyterhub.handlers.pages import HealthCheckHandler
from tornado.httputil import HTTPHeaders, HTTPServerRequest
handler = mock.Mock(spec=HealthCheckHandler)
handler.get_status.return_value = 200
handler.request = HTTPServerRequest(method='GET', uri='/hub/health', headers=HTTPHeaders())
handler.current_user = None
with mock.patch.object(log, 'access_log') as access:
    log.log_request(handler)
checks['health_debug'] = [c[0][0] for c in access.log.call_args_list] == [logging.DEBUG]
print(json.dumps(checks))
"""
    out = run(edited, code)
    assert out["intersect"] == ["read:users"]
    assert out["before_use"] == []
    assert out["same_orm"] is True
    assert out["rolled_back"] is True
    assert out["health_debug"] is True


def test_undo_gives_the_packages_back_as_they_ship(edited: Path, tmp_path: Path):
    shipped = server_trims.site_dir()
    edited_files = [f"{p}/{name}" for p, files in server_trims.EDITS.items() for name in files]
    assert not any(filecmp.cmp(edited / f, shipped / f, shallow=False) for f in edited_files)
    restored = server_trims.undo(edited, tmp_path / "originals")
    assert sorted(restored) == sorted(edited_files)
    assert all(filecmp.cmp(edited / f, shipped / f, shallow=False) for f in edited_files)


def test_a_text_not_found_stops_the_edit_and_writes_nothing(tmp_path: Path, monkeypatch):
    site = copy_of_site(tmp_path)
    before = {p: p.read_text() for p in site.rglob("*.py")}
    edits = {package: dict(files) for package, files in server_trims.EDITS.items()}
    edits["jsonschema"]["_format.py"] = [*edits["jsonschema"]["_format.py"],
                                         ("a line no jsonschema version has\n", "")]
    monkeypatch.setattr(server_trims, "EDITS", edits)
    with pytest.raises(server_trims.EditFailed, match="jsonschema/_format.py.*revisit"):
        server_trims.edit(site, tmp_path / "originals")
    assert {p: p.read_text() for p in site.rglob("*.py")} == before
    assert not (tmp_path / "originals").exists()
