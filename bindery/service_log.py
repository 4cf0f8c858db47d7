"""The service's own log: one line per record, JSON by default, with the launch it is about.

Every line carries time, level, logger (the module's name) and message. A line written while a
launch runs also carries that launch's id, repository, ref and phase: they live in a context
variable that the launch's task (and every task it starts) inherits, so no call site passes them.
A build shared by several launches runs in a context of its own (its image, repository and commit).

The launch id is not the session id: the session id is a capability (with an event index it is
the ``Last-Event-ID`` that replays a launch, token included), so it never appears in a log. The id
is a digest of it, the same on whichever process continues the launch, and useless to replay it.

Secrets are removed from every field of a line, whatever put them there (a message, its arguments, an
exception's text, uvicorn's access log): tokens and capabilities in URLs, Authorization headers,
passwords in URLs.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import logging.config
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

LogFormat = Literal["json", "text"]

# name=value query or form parameters that grant something: Jupyter and hub tokens, build tokens,
# the event stream's resume position (a session id), private build logs' keys, API keys, passwords.
_SECRET_PARAM = re.compile(
    r"((?:[?&;\s\"'{,]|^)(?:[a-z_]*token|lastEventId|last[-_]event[-_]id|(?:api[-_]?)?key|password|"
    r"secret|session)[\"']?\s*[=:]\s*[\"']?)[^&\s\"',}]+", re.IGNORECASE)
_AUTH_HEADER = re.compile(r"((?:authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?"
                          r"(?:token |bearer |basic )?)[^\s\"',}]+", re.IGNORECASE)
# a resume link's secret in a path (/v2/resume/<secret>, /build/resume/..., /resume/.../delete)
_RESUME_SECRET = re.compile(r"(\bresume/)[A-Za-z0-9_-]{40,64}")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@", re.IGNORECASE)
REDACTED = "[redacted]"


# words one of the patterns needs: a field with none of them is written as it is (most are)
_MARKERS = ("token", "event", "key", "password", "secret", "session", "authorization", "@",
            "resume/")


def redact(text: str) -> str:
    """``text`` with every secret it carries replaced by ``[redacted]``."""
    lowered = text.lower()
    if not any(marker in lowered for marker in _MARKERS):
        return text
    text = _SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, text)
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _RESUME_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    return _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + "@", text)


def launch_id(session_id: str) -> str:
    """The id logs name a launch by: derived from its session, never revealing it."""
    return hashlib.sha256(b"bindery-launch:" + session_id.encode()).hexdigest()[:12]


@dataclass
class LaunchContext:
    """What every log line about one launch (or one build) says about it."""

    launch_id: str = ""
    spec: str = ""  # provider/spec as asked
    repo: str = ""
    ref: str = ""
    phase: str = ""
    build: str = ""  # the image a build line is about

    def fields(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


_CURRENT: contextvars.ContextVar[LaunchContext | None] = contextvars.ContextVar(
    "bindery_launch", default=None)


def current() -> LaunchContext | None:
    return _CURRENT.get()


@contextmanager
def about(context: LaunchContext) -> Iterator[LaunchContext]:
    """Lines written inside (and in tasks started inside) are about ``context``."""
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


def set_current(context: LaunchContext | None) -> None:
    """Make ``context`` this task's (a task's own copy of the context: no reset needed)."""
    _CURRENT.set(context)


# The attributes every LogRecord has: anything else was passed as `extra=` and is written out.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = current()
        if context is not None:
            line.update(context.fields())
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # every value redacted before it is quoted (redacting the quoted line could cut an escape)
        return json.dumps({k: redact(v) if isinstance(v, str) else v for k, v in line.items()},
                          default=lambda v: redact(str(v)), ensure_ascii=False)


class Text(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = current()
        about_ = " ".join(f"{k}={v}" for k, v in context.fields().items()) if context else ""
        extra = " ".join(f"{k}={v}" for k, v in vars(record).items()
                         if k not in _STANDARD and not k.startswith("_"))
        return redact(" ".join(p for p in (text, about_, extra) if p))


def _iso(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


def config(fmt: LogFormat = "json", level: str = "info") -> dict[str, Any]:
    """A dictConfig for the whole process (root, uvicorn's loggers) writing ``fmt`` to stderr."""
    level = level.upper()
    formatter = {"()": JsonLines} if fmt == "json" else {"()": Text}
    handler = {"class": "logging.StreamHandler", "formatter": "line",
               "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": formatter},
        "handlers": {"line": handler},
        "root": {"handlers": ["line"], "level": level},
        # uvicorn's loggers otherwise have handlers of their own (unredacted, unstructured)
        "loggers": {name: {"handlers": [], "propagate": True, "level": level}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }


def configure(fmt: LogFormat = "json", level: str = "info") -> None:
    logging.config.dictConfig(config(fmt, level))
