"""The five data-repository services, each speaking the part of its public API bindery needs.

Specs follow BinderHub's: ``zenodo/10.5281/zenodo.<id>``, ``figshare/10.6084/m9.figshare.<id>[.v<n>]``,
``dataverse/<dataset DOI>``, ``hydroshare/<resource id>``, ``ckan/<url-escaped dataset URL>``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from bindery.events import LaunchError
from bindery.providers.data_records import RecordFile, RecordProvider
from bindery.providers.tools import ResolveTools

MAX_PAGES = 100  # paginated file lists: a bound, not a expectation


def _bad(provider: RecordProvider, spec: str) -> LaunchError:
    return LaunchError(f"A {provider.label} spec looks like {provider.spec_example!r}; got "
                       f"{spec[:100]!r}.", 400)


class ZenodoProvider(RecordProvider):
    """InvenioRDM API: GET /api/records/<id> (a concept id redirects to the latest version), then
    its ``links.files``: ``entries[]`` with ``key``, ``size`` and ``links.content``."""

    name = "zenodo"
    label = "Zenodo"
    spec_example = "10.5281/zenodo.3242074"
    placeholder = "10.5281/zenodo.3242074"

    def parse_record(self, spec: str) -> str:
        match = re.fullmatch(r"(10\.\d{4,9})/zenodo\.(\d{1,12})", spec)
        if not match:
            raise _bad(self, spec)
        self.doi_prefix = match.group(1)
        return match.group(2)

    def base_url(self) -> str:
        return self.settings.providers.zenodo_url.rstrip("/")

    def record_url(self) -> str:
        return f"{self.base_url()}/records/{self.record_id}"

    async def lookup(self, tools: ResolveTools) -> tuple[str, list[RecordFile]]:
        record = await self.api_json(tools, f"{self.base_url()}/api/records/{self.record_id}")
        version = str(record.get("id", ""))
        files_url = str((record.get("links") or {}).get("files", ""))
        if not version.isdigit() or not files_url:
            raise LaunchError(f"Zenodo's answer for {self.spec} has no record id or files link.", 502)
        listing = await self.api_json(tools, files_url)
        files = [RecordFile(str(e["key"]), str(e["links"]["content"]), e.get("size"))
                 for e in listing.get("entries", []) if e.get("key") and e.get("links")]
        return version, files

    def persistent_spec(self) -> str:
        return f"{self.doi_prefix}/zenodo.{self.version or self.record_id}"


class FigshareProvider(RecordProvider):
    """GET /v2/articles/<id>[/versions/<n>]: ``version`` and ``files[]`` (``name``, ``download_url``,
    ``size``, ``is_link_only``)."""

    name = "figshare"
    label = "Figshare"
    spec_example = "10.6084/m9.figshare.9782777.v1"
    placeholder = "10.6084/m9.figshare.9782777.v1"

    def parse_record(self, spec: str) -> str:
        match = re.fullmatch(r"10\.\d{4,9}/m9\.figshare\.(\d{1,12})(?:\.v(\d{1,6}))?", spec)
        if not match:
            raise _bad(self, spec)
        self.wanted_version = match.group(2)
        return match.group(1)

    def base_url(self) -> str:
        return self.settings.providers.figshare_api_url.rstrip("/")

    def record_url(self) -> str:
        return f"{self.base_url()}/v2/articles/{self.record_id}"

    async def lookup(self, tools: ResolveTools) -> tuple[str, list[RecordFile]]:
        url = self.record_url()
        if self.wanted_version:
            url += f"/versions/{self.wanted_version}"
        article = await self.api_json(tools, url)
        files = [RecordFile(str(f["name"]), str(f["download_url"]), f.get("size"))
                 for f in article.get("files", []) if not f.get("is_link_only")]
        return f"{self.record_id}.v{article.get('version', self.wanted_version or 0)}", files

    def persistent_spec(self) -> str:
        return f"10.6084/m9.figshare.{self.version or self.record_id}"


class DataverseProvider(RecordProvider):
    """GET /api/datasets/:persistentId?persistentId=doi:<DOI>: ``data.latestVersion`` with
    ``versionNumber``, ``versionMinorNumber`` and ``files[]`` (``directoryLabel``, ``dataFile``);
    files from /api/access/datafile/<id> (``?format=original`` for ingested tabular files)."""

    name = "dataverse"
    label = "Dataverse"
    spec_example = "10.7910/DVN/TJCLKP"
    placeholder = "10.7910/DVN/TJCLKP"

    def parse_record(self, spec: str) -> str:
        doi = unquote(spec).removeprefix("doi:")
        if not re.fullmatch(r"10\.\d{4,9}/[A-Za-z0-9._/-]{1,200}", doi) or ".." in doi:
            raise _bad(self, spec)
        return doi

    def base_url(self) -> str:
        return self.settings.providers.dataverse_url.rstrip("/")

    def record_url(self) -> str:
        return f"{self.base_url()}/dataset.xhtml?persistentId=doi:{self.record_id}"

    @property
    def slug(self) -> str:
        return f"dataverse-{self.record_id}"

    async def lookup(self, tools: ResolveTools) -> tuple[str, list[RecordFile]]:
        body = await self.api_json(tools, f"{self.base_url()}/api/datasets/:persistentId",
                                   {"persistentId": f"doi:{self.record_id}"})
        data: dict[str, Any] = body.get("data") or {}
        latest = data.get("latestVersion") or {}
        if latest.get("versionNumber") is None:
            raise LaunchError(f"The Dataverse dataset {self.record_id} has no published version.",
                              404)
        version = f"{data.get('id')}-v{latest['versionNumber']}.{latest.get('versionMinorNumber', 0)}"
        files = []
        for entry in latest.get("files", []):
            datafile = entry.get("dataFile") or {}
            name = datafile.get("originalFileName") or datafile.get("filename") or entry.get("label")
            url = f"{self.base_url()}/api/access/datafile/{int(datafile['id'])}"
            if datafile.get("originalFileName"):
                url += "?format=original"
            folder = entry.get("directoryLabel")
            files.append(RecordFile(f"{folder}/{name}" if folder else str(name), url,
                                    datafile.get("originalFileSize") or datafile.get("filesize")))
        return version, files


class HydroshareProvider(RecordProvider):
    """GET /hsapi/resource/<id>/sysmeta/ (``date_last_updated`` is the version) and the paginated
    /hsapi/resource/<id>/files/ (``results[]`` with ``file_name``, ``url``, ``size``; ``next``)."""

    name = "hydroshare"
    label = "HydroShare"
    spec_example = "b8f6eae9d89241cf8b5904033460af61"
    placeholder = "b8f6eae9d89241cf8b5904033460af61"

    def parse_record(self, spec: str) -> str:
        resource = unquote(spec).rstrip("/").rsplit("/", 1)[-1]
        if not re.fullmatch(r"[0-9a-f]{32}", resource):
            raise _bad(self, spec)
        return resource

    def base_url(self) -> str:
        return self.settings.providers.hydroshare_url.rstrip("/")

    def record_url(self) -> str:
        return f"{self.base_url()}/resource/{self.record_id}/"

    async def lookup(self, tools: ResolveTools) -> tuple[str, list[RecordFile]]:
        api = f"{self.base_url()}/hsapi/resource/{self.record_id}"
        meta = await self.api_json(tools, f"{api}/sysmeta/")
        updated = str(meta.get("date_last_updated") or "")
        if not updated:
            raise LaunchError(f"HydroShare's answer for {self.record_id} has no update date.", 502)
        files: list[RecordFile] = []
        page: str | None = f"{api}/files/"
        for _ in range(MAX_PAGES):
            if not page:
                break
            listing = await self.api_json(tools, page)
            for item in listing.get("results", []):
                name = str(item.get("file_name") or item["url"].rsplit("/", 1)[-1])
                files.append(RecordFile(name, str(item["url"]), item.get("size")))
            page = listing.get("next")
        return f"{self.record_id[:8]}-{updated}", files


class CkanProvider(RecordProvider):
    """GET <site>/api/3/action/package_show?id=<name>: ``result.metadata_modified`` is the version,
    ``result.resources[]`` (``name``, ``url``) the files."""

    name = "ckan"
    label = "CKAN"
    spec_example = "https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fsample-dataset-1"
    placeholder = "https://demo.ckan.org/dataset/sample-dataset-1"
    escape_repo = True

    def parse_record(self, spec: str) -> str:
        url = unquote(spec).split("?", 1)[0].rstrip("/")
        for site in self.settings.providers.ckan_urls:
            prefix = site.rstrip("/") + "/dataset/"
            name = url.removeprefix(prefix)
            if url.startswith(prefix) and re.fullmatch(r"[a-z0-9_-]{1,100}", name):
                self.site = site.rstrip("/")
                return name
        sites = ", ".join(self.settings.providers.ckan_urls) or "none"
        raise LaunchError(f"A CKAN spec is the url-escaped URL of a dataset on one of this "
                          f"service's CKAN sites ({sites}), like <site>/dataset/<name>.", 400)

    def base_url(self) -> str:
        return self.site

    def record_url(self) -> str:
        return f"{self.site}/dataset/{self.record_id}"

    async def lookup(self, tools: ResolveTools) -> tuple[str, list[RecordFile]]:
        body = await self.api_json(tools, f"{self.site}/api/3/action/package_show",
                                   {"id": self.record_id})
        result = body.get("result") or {}
        if not body.get("success") or not result.get("metadata_modified"):
            raise LaunchError(f"CKAN did not describe the dataset {self.record_id}.", 502)
        files = []
        for resource in result.get("resources", []):
            url = str(resource.get("url") or "")
            name = url.rsplit("/", 1)[-1] or str(resource.get("name") or resource.get("id"))
            files.append(RecordFile(unquote(name), url, resource.get("size")))
        return f"{self.record_id[:40]}-{result['metadata_modified']}", files


RECORD_PROVIDERS = (ZenodoProvider, FigshareProvider, DataverseProvider, HydroshareProvider,
                    CkanProvider)
