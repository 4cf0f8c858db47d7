"""Small local HTTP servers speaking the part of each service's public API that bindery uses.

Shapes follow the services' public documentation:
- GitHub REST: GET /repos/{owner}/{repo}/commits/{ref} -> {"sha": ...}, ETag, 304 on If-None-Match,
  422 {"message": "No commit found for SHA: ..."} for an unknown ref.
- GitLab REST v4: GET /projects/{url-escaped path}/repository/commits/{ref} -> {"id": ...}, 404
  {"message": "404 Commit Not Found"}.
- Zenodo (InvenioRDM): GET /api/records/{id} -> {"id", "doi", "links": {"files": ...}};
  GET /api/records/{id}/files -> {"entries": [{"key", "size", "links": {"content": ...}}]}.
- Figshare: GET /v2/articles/{id}[/versions/{n}] -> {"id", "version", "files": [{"name", "size",
  "download_url", "is_link_only"}]}.
- Dataverse: GET /api/datasets/:persistentId?persistentId=doi:... -> {"status": "OK", "data": {"id",
  "latestVersion": {"versionNumber", "versionMinorNumber", "files": [{"label", "directoryLabel",
  "dataFile": {"id", "filename", "filesize"}}]}}}; GET /api/access/datafile/{id}.
- HydroShare: GET /hsapi/resource/{id}/sysmeta/ -> {"date_last_updated", ...};
  GET /hsapi/resource/{id}/files/ -> {"count", "next", "previous", "results": [{"file_name", "url",
  "size"}]}.
- CKAN: GET /api/3/action/package_show?id=... -> {"success": true, "result": {"name",
  "metadata_modified", "resources": [{"id", "name", "url"}]}}.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

Answer = tuple[int, dict[str, str], bytes]
Route = Callable[[str, dict[str, list[str]], dict[str, str]], Answer | None]


def json_answer(body: object, status: int = 200) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class ApiServer:
    """One HTTP server; `route(path, query, headers)` answers or returns None (404)."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.requests: Counter[str] = Counter()  # path -> count
        self.not_modified = 0
        self.failing = False  # answer 503 to everything (an outage)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                server.requests[parts.path] += 1
                if server.failing:
                    status, headers, body = json_answer({"message": "down"}, 503)
                else:
                    answer = server.route(parts.path, parse_qs(parts.query),
                                          {k.lower(): v for k, v in self.headers.items()})
                    status, headers, body = answer or json_answer({"message": "Not Found"}, 404)
                etag = headers.get("ETag")
                if status == 200 and etag and self.headers.get("If-None-Match") == etag:
                    server.not_modified += 1
                    status, body = 304, b""
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def with_etag(answer: Answer) -> Answer:
    status, headers, body = answer
    return status, {**headers, "ETag": '"' + hashlib.sha1(body).hexdigest() + '"'}, body


def github_api(commits: dict[str, dict[str, str]]) -> ApiServer:
    """`commits`: "owner/repo" -> {ref or SHA prefix: full SHA}; prefixes are matched as GitHub
    does (a unique commit starting with the ref)."""
    def route(path: str, query: dict, headers: dict) -> Answer | None:
        if not path.startswith("/repos/") or "/commits/" not in path:
            return None
        repo, _, ref = path.removeprefix("/repos/").partition("/commits/")
        known = commits.get(repo)
        if known is None:
            return json_answer({"message": "Not Found"}, 404)
        sha = known.get(unquote(ref))
        if sha is None:
            matches = {s for s in known.values() if s.startswith(ref)} if len(ref) >= 4 else set()
            if len(matches) != 1:
                return json_answer({"message": f"No commit found for SHA: {ref}"}, 422)
            sha = matches.pop()
        return with_etag(json_answer({"sha": sha, "commit": {"message": "m"}}))
    return ApiServer(route)


def gitlab_api(commits: dict[str, dict[str, str]]) -> ApiServer:
    def route(path: str, query: dict, headers: dict) -> Answer | None:
        if not path.startswith("/api/v4/projects/") or "/repository/commits/" not in path:
            return None
        project, _, ref = path.removeprefix("/api/v4/projects/").partition("/repository/commits/")
        sha = commits.get(unquote(project), {}).get(unquote(ref))
        if sha is None:
            return json_answer({"message": "404 Commit Not Found"}, 404)
        return with_etag(json_answer({"id": sha, "short_id": sha[:8]}))
    return ApiServer(route)
