"""Keep secrets out of the service's log: tokens in URLs are replaced before a line is written.

uvicorn's access log prints every request line with its query string, and launch URLs carry
``build_token=...`` (Jupyter links ``token=...``, private build logs ``key=...``). The filter rewrites the record's message and
arguments, so every handler (file, console) sees the redacted line.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

# build_token, token (Jupyter links), key (private build logs, bindery/builds/log_access.py)
SECRET_PARAM = re.compile(r"((?:build_)?token=|\bkey=)[^&\s\"']+", re.IGNORECASE)
REDACTED = r"\1[redacted]"


def redact(text: str) -> str:
    return SECRET_PARAM.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging config with the redacting filter on every handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_tokens")
    return config
