"""Providers: repository hosts, DOI services, pre-built images, credentials, and where user input may make bindery connect.

Each field is also read from ``BINDERY_<FIELD>`` (upper case); see bindery/settings/__init__.py.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class ProviderSettings(BaseModel):
    github_url: str = Field("https://github.com", description="Base URL of the GitHub server (gh).")
    gitlab_url: str = Field("https://gitlab.com", description="Base URL of the GitLab server (gl).")
    gist_url: str = Field("https://gist.github.com", description="Base URL of the gist server.")
    git_allowed_schemes: list[str] = Field(
        default_factory=lambda: ["https", "http", "git"],
        description="URL schemes a repository URL may use (never file, ext, ssh).",
    )
    git_timeout: float = Field(20.0, description="Timeout in seconds for one git ls-remote.")
    repo_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR, e.g. '10.1.2.0/24') a repository's host may resolve to although "
        "they are not public. Every other loopback, private, link-local (169.254.169.254), "
        "unique-local, multicast or otherwise non-global address is refused before any connection. "
        "Empty: only public addresses.",
    )
    git_concurrency: int = Field(
        8, description="git subprocesses (ls-remote and friends) bindery runs at once; more wait.")
    ref_cache_seconds: float = Field(
        60.0, description="Seconds a resolved ref (branch, tag, abbreviated SHA -> commit) is reused, "
        "so a crowd opening one link costs one resolution. 0: resolve every time (concurrent "
        "requests still share one).")
    ref_cache_entries: int = Field(10_000, description="Resolved refs kept at most (oldest go first).")
    sha_cache_repos: int = Field(
        20, description="Repositories kept in the abbreviated-SHA cache (<data_dir>/cache/commits: "
        "commit-only, treeless clones); the least recently used are removed beyond this.")
    sha_cache_bytes: int = Field(
        0, description="Bytes the abbreviated-SHA cache may hold on disk; the least recently used "
        "repositories are removed beyond this (and beyond sha_cache_repos). 0: 1% of the disk the "
        "data folder is on.")
    git_fetch_timeout: float = Field(
        120.0, description="Seconds one fetch into the abbreviated-SHA cache may take.")
    github_api_url: str = Field(
        "", description="GitHub REST API used to resolve gh refs (with ETags). Empty: "
        "https://api.github.com when github_url is https://github.com, else none (git protocol).")
    gitlab_api_url: str = Field(
        "", description="GitLab REST API (v4) used to resolve gl refs. Empty: <gitlab_url>/api/v4 "
        "when gitlab_url is https://gitlab.com, else none (git protocol).")
    api_timeout: float = Field(
        10.0, description="Timeout in seconds for one request to a repository host's or DOI "
        "service's web API (and for each read of a file download).")
    git_credentials: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Tokens for private repositories: a JSON object mapping a URL prefix (e.g. "
        "'https://git.example.org/team/') to a token. Used for resolution and cloning of URLs "
        "under the longest matching prefix (git: an http.<prefix>.extraHeader passed through the "
        "environment, never in a URL or .git/config; APIs: an Authorization header).")
    zenodo_url: str = Field("https://zenodo.org", description="Base URL of the Zenodo (InvenioRDM) "
                            "service of the zenodo provider (spec: the DOI 10.5281/zenodo.<id>).")
    figshare_api_url: str = Field(
        "https://api.figshare.com", description="Figshare API base of the figshare provider (spec: "
        "the DOI 10.6084/m9.figshare.<id>[.v<version>]).")
    dataverse_url: str = Field(
        "https://dataverse.harvard.edu", description="Base URL of the Dataverse installation of the "
        "dataverse provider (spec: the dataset DOI, e.g. 10.7910/DVN/TJCLKP).")
    hydroshare_url: str = Field(
        "https://www.hydroshare.org", description="Base URL of HydroShare (spec: the resource id).")
    ckan_urls: list[str] = Field(
        default_factory=lambda: ["https://demo.ckan.org"],
        description="CKAN sites the ckan provider may fetch datasets from (spec: the url-escaped "
        "dataset URL, <site>/dataset/<name>).")
    doi_download_origins: list[str] = Field(
        default_factory=lambda: ["https://ndownloader.figshare.com"],
        description="Origins record files may be downloaded from besides the record's own service "
        "(a file link pointing anywhere else is refused, so a record cannot make bindery fetch "
        "from an arbitrary address).")
    doi_max_bytes: int = Field(
        2 * 1024**3, description="Largest total size of one DOI record's files that is downloaded.")
    doi_max_files: int = Field(1000, description="Most files of one DOI record that are downloaded.")
    prebuilt_registries: list[str] = Field(
        default_factory=list,
        description="Image name prefixes (e.g. '127.0.0.1:5000/bindery/', 'quay.io/myteam/') of "
        "pre-built images the `image` provider may launch as they are (spec: the image reference). "
        "Empty: the image provider is off.")
