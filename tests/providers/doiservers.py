"""One local server per DOI service, each holding one record with the given files (shapes: see
apiservers.py's docstring). `make(name, files)` -> (server, spec of the record)."""

from __future__ import annotations

from urllib.parse import quote

from tests.providers.apiservers import Answer, ApiServer, json_answer, with_etag

ZENODO_ID, FIGSHARE_ID, DATAVERSE_DOI = "3242074", "9782777", "10.7910/DVN/TJCLKP"
HYDROSHARE_ID, CKAN_NAME = "b8f6eae9d89241cf8b5904033460af61", "sample-dataset-1"


def _file(files: dict[str, bytes], name: str) -> Answer:
    return 200, {"Content-Type": "application/octet-stream"}, files[name]


def zenodo(files: dict[str, bytes]) -> tuple[ApiServer, str]:
    def route(path: str, query: dict, headers: dict) -> Answer | None:
        base = server.url
        if path == f"/api/records/{ZENODO_ID}":
            return with_etag(json_answer({
                "id": int(ZENODO_ID), "doi": f"10.5281/zenodo.{ZENODO_ID}",
                "metadata": {"title": "test record", "upload_type": "software"},
                "links": {"self": f"{base}/api/records/{ZENODO_ID}",
                          "files": f"{base}/api/records/{ZENODO_ID}/files"}}))
        if path == f"/api/records/{ZENODO_ID}/files":
            return json_answer({"enabled": True, "entries": [
                {"key": n, "size": len(b), "checksum": "md5:0",
                 "links": {"content": f"{base}/api/records/{ZENODO_ID}/files/{quote(n)}/content"}}
                for n, b in files.items()]})
        prefix = f"/api/records/{ZENODO_ID}/files/"
        if path.startswith(prefix) and path.endswith("/content"):
            return _file(files, path.removeprefix(prefix).removesuffix("/content"))
        return None
    server = ApiServer(route)
    return server, f"10.5281/zenodo.{ZENODO_ID}"


def figshare(files: dict[str, bytes]) -> tuple[ApiServer, str]:
    def route(path: str, query: dict, headers: dict) -> Answer | None:
        if path in (f"/v2/articles/{FIGSHARE_ID}", f"/v2/articles/{FIGSHARE_ID}/versions/2"):
            return json_answer({"id": int(FIGSHARE_ID), "version": 2, "title": "t", "files": [
                {"id": i, "name": n, "size": len(b), "is_link_only": False,
                 "download_url": f"{server.url}/ndownloader/files/{i}"}
                for i, (n, b) in enumerate(files.items())] + [
                {"id": 99, "name": "elsewhere", "size": 1, "is_link_only": True,
                 "download_url": "http://198.51.100.7/never-fetched"}]})
        if path.startswith("/ndownloader/files/"):
            return _file(files, list(files)[int(path.rsplit("/", 1)[1])])
        return None
    server = ApiServer(route)
    return server, f"10.6084/m9.figshare.{FIGSHARE_ID}.v2"


def dataverse(files: dict[str, bytes]) -> tuple[ApiServer, str]:
    def route(path: str, query: dict, headers: dict) -> Answer | None:
        if path == "/api/datasets/:persistentId" and \
                query.get("persistentId") == [f"doi:{DATAVERSE_DOI}"]:
            return json_answer({"status": "OK", "data": {"id": 3323458, "latestVersion": {
                "versionNumber": 1, "versionMinorNumber": 0, "versionState": "RELEASED",
                "files": [{"label": n.rsplit("/", 1)[-1], "restricted": False,
                           **({"directoryLabel": n.rsplit("/", 1)[0]} if "/" in n else {}),
                           "dataFile": {"id": 1000 + i, "filename": n.rsplit("/", 1)[-1],
                                        "filesize": len(b), "contentType": "text/plain"}}
                          for i, (n, b) in enumerate(files.items())]}}})
        if path.startswith("/api/access/datafile/"):
            return _file(files, list(files)[int(path.rsplit("/", 1)[1]) - 1000])
        return None
    server = ApiServer(route)
    return server, DATAVERSE_DOI


def hydroshare(files: dict[str, bytes]) -> tuple[ApiServer, str]:
    names = list(files)

    def route(path: str, query: dict, headers: dict) -> Answer | None:
        api = f"/hsapi/resource/{HYDROSHARE_ID}"
        if path == f"{api}/sysmeta/":
            return json_answer({"resource_id": HYDROSHARE_ID, "resource_type": "CompositeResource",
                                "date_last_updated": "2024-03-01T10:20:30.123456Z"})
        if path == f"{api}/files/":  # two pages, one file each at most, to follow `next`
            page = int(query.get("page", ["1"])[0])
            chunk = names[page - 1:page]
            more = page < len(names)
            return json_answer({"count": len(names), "previous": None,
                                "next": f"{server.url}{api}/files/?page={page + 1}" if more else None,
                                "results": [{"file_name": n, "size": len(files[n]),
                                             "url": f"{server.url}/resource/{HYDROSHARE_ID}/data/"
                                                    f"contents/{quote(n)}"} for n in chunk]})
        prefix = f"/resource/{HYDROSHARE_ID}/data/contents/"
        if path.startswith(prefix):
            return _file(files, path.removeprefix(prefix))
        return None
    server = ApiServer(route)
    return server, HYDROSHARE_ID


def ckan(files: dict[str, bytes]) -> tuple[ApiServer, str]:
    def route(path: str, query: dict, headers: dict) -> Answer | None:
        if path == "/api/3/action/package_show" and query.get("id") == [CKAN_NAME]:
            return json_answer({"success": True, "help": "...", "result": {
                "id": "c322307a-b871-44fe-a602-32ee8437ff04", "name": CKAN_NAME,
                "metadata_modified": "2024-05-06T07:08:09.000001",
                "resources": [{"id": f"r{i}", "name": n, "url_type": "upload",
                               "url": f"{server.url}/dataset/{CKAN_NAME}/resource/r{i}/download/"
                                      f"{quote(n)}"} for i, n in enumerate(files)]}})
        if path.startswith(f"/dataset/{CKAN_NAME}/resource/"):
            return _file(files, path.rsplit("/", 1)[1])
        return None
    server = ApiServer(route)
    return server, quote(f"{server.url}/dataset/{CKAN_NAME}", safe="")


SERVICES = {"zenodo": zenodo, "figshare": figshare, "dataverse": dataverse,
            "hydroshare": hydroshare, "ckan": ckan}


def settings_for(name: str, server: ApiServer) -> dict[str, object]:
    """The bindery settings that point provider `name` at `server`."""
    return {"zenodo": {"zenodo_url": server.url}, "figshare": {"figshare_api_url": server.url},
            "dataverse": {"dataverse_url": server.url},
            "hydroshare": {"hydroshare_url": server.url},
            "ckan": {"ckan_urls": [server.url]}}[name]
