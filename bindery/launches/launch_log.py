"""The launch event log: one JSON line per launch that started a server, in BinderHub's launch schema
(``binderhub.jupyter.org/launch``, version 6), so the tools that read mybinder.org's events archive
read bindery's too.

Each line is the event's fields in BinderHub's capsule: ``timestamp`` (UTC, microseconds, ``Z``),
``schema``, ``version``, then ``provider`` (BinderHub's provider name, e.g. ``GitHub``), ``spec``,
``ref`` (the resolved commit), ``status``, ``build_token``, ``origin`` (this Binder's host) and
``request_origin``. Lines go to ``<launch_log_dir>/events-YYYY-MM-DD.jsonl``, a new file each UTC day
(older ones beyond ``launch_log_keep_days`` are deleted then), and optionally to the service log.
Every process of a service appends whole lines to the same day's file (one ``O_APPEND`` write each).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bindery.settings import Settings

SCHEMA = "binderhub.jupyter.org/launch"
VERSION = 6
# bindery's provider names -> BinderHub's (the schema's enum); launches of other kinds (a local
# folder, a pre-built image) have no BinderHub name and are not logged.
PROVIDER_NAMES = {"gh": "GitHub", "gist": "Gist", "gl": "GitLab", "git": "Git",
                  "zenodo": "Zenodo", "figshare": "Figshare", "hydroshare": "Hydroshare",
                  "dataverse": "Dataverse", "ckan": "CKAN"}
FILE_PREFIX, FILE_SUFFIX = "events-", ".jsonl"

service_log = logging.getLogger("bindery.launch_events")
log = logging.getLogger("bindery.launches")


class LaunchLog:
    def __init__(self, folder: Path | None, keep_days: int, to_service_log: bool,
                 origin: str) -> None:
        self.folder = folder
        self.keep_days = keep_days
        self.to_service_log = to_service_log
        self.origin = origin
        self._day: date | None = None  # the day whose file this process last wrote

    @classmethod
    def from_settings(cls, settings: Settings) -> LaunchLog:
        launches = settings.launches
        return cls(launches.launch_log_dir, launches.launch_log_keep_days,
                   launches.launch_log_to_service_log, urlsplit(settings.service.web_url).netloc)

    @property
    def enabled(self) -> bool:
        return self.folder is not None or self.to_service_log

    def record(self, provider: str, spec: str, ref: str, status: str = "success",
               build_token: bool = False, request_origin: str = "") -> None:
        """Write one launch's line; never raises (a full disk must not fail a launch)."""
        if not self.enabled or provider not in PROVIDER_NAMES:
            return
        now = datetime.now(UTC)
        line = json.dumps({
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "schema": SCHEMA,
            "version": VERSION, "provider": PROVIDER_NAMES[provider], "spec": spec, "ref": ref,
            "status": status, "build_token": build_token, "origin": self.origin,
            "request_origin": request_origin})
        if self.to_service_log:
            service_log.info(line)
        if self.folder is not None:
            try:
                self._append(now.date(), line)
            except OSError as exc:
                log.error("launch event log: could not write to %s: %s", self.folder, exc)

    def _append(self, day: date, line: str) -> None:
        if day != self._day:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._day = day
            self._prune(day)
        path = self.folder / f"{FILE_PREFIX}{day.isoformat()}{FILE_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def _prune(self, today: date) -> None:
        if not self.keep_days:
            return
        oldest = today - timedelta(days=self.keep_days - 1)
        for path in self.folder.glob(f"{FILE_PREFIX}*{FILE_SUFFIX}"):
            try:
                day = date.fromisoformat(path.name[len(FILE_PREFIX):-len(FILE_SUFFIX)])
            except ValueError:
                continue  # not one of ours
            if day < oldest:
                path.unlink(missing_ok=True)
