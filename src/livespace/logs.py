"""Logging: one line per record, ISO time, logger name, and no token ever written.

:class:`RedactTokens` masks tokens in a record's message and in its args (uvicorn's access
log passes the path with its query string as an arg). :func:`setup_logging` installs it
for the process; :data:`UVICORN_LOG_CONFIG` does the same for ``uvicorn.run(log_config=)``,
which configures logging again in every worker.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from livespace.times import iso

MASK = "***"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # anything shaped like a JWT: three base64url parts, the header starting {"
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"), MASK),
    # query parameters: token=, access_token=, ... up to & or whitespace
    (re.compile(r"(token=)[^&\s]*", re.IGNORECASE), rf"\g<1>{MASK}"),
    # a subprotocol entry bearer.<jwt>
    (re.compile(r"(bearer\.)[^\s,;\"']+", re.IGNORECASE), rf"\g<1>{MASK}"),
    # an Authorization header value (8+ token characters, so prose is left alone)
    (re.compile(r"((?i:bearer)\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\g<1>{MASK}"),
)


def redact(text: str) -> str:
    """``text`` with every token-looking part masked."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def _redact_arg(arg: object) -> object:
    if isinstance(arg, str):
        return redact(arg)
    if isinstance(arg, bytes | bytearray):
        text = bytes(arg).decode("utf-8", "replace")
        masked = redact(text)
        return arg if masked == text else masked
    if arg is None or isinstance(arg, bool | int | float):
        return arg  # keeps %d and %f working
    text = str(arg)
    masked = redact(text)
    return arg if masked == text else masked


class RedactTokens(logging.Filter):
    """Masks tokens in the message and args of every record; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_redact_arg(arg) for arg in args)
        elif isinstance(args, Mapping):
            record.args = {key: _redact_arg(value) for key, value in args.items()}
        return True


class SocketChatter(logging.Filter):
    """Drops uvicorn's per-socket INFO lines ("[accepted]", "connection open/closed"):
    ``livespace.audit`` already logs each socket's open and close, with who and why, and
    three more lines per connection cost handshake time and log volume. Refusals and
    anything above INFO still pass."""

    _QUIET = ("connection open", "connection closed", '%s - "WebSocket %s" [accepted]')

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and record.msg in self._QUIET)


class LineFormatter(logging.Formatter):
    """``<ISO time UTC> <LEVEL> <logger> <message>``; newlines escaped to keep one line."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s %(message)s", datefmt)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso(datetime.fromtimestamp(record.created, UTC))

    def format(self, record: logging.LogRecord) -> str:
        # redacting the whole line too covers tracebacks and exception messages
        return redact(super().format(record)).replace("\r", "\\r").replace("\n", "\\n")


_FIELD = re.compile(r"([a-z_]+)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)")


class JsonFormatter(logging.Formatter):
    """One JSON object per line (``LIVESPACE_LOG_FORMAT=json``): ``ts``, ``level``,
    ``logger``, ``message`` and, on an error, ``exc``; audit records
    (``livespace.audit``) also carry their ``key=value`` pairs as fields. Redacted like
    :class:`LineFormatter`: every value passes through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        out: dict[str, Any] = {
            "ts": iso(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if record.name == "livespace.audit":
            for key, value in _FIELD.findall(message):
                out.setdefault(key, value.strip("'\""))
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


FORMATS = ("line", "json")


def log_config(level: str = "INFO", fmt: str = "line") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for uvicorn (and the process) with redaction,
    at ``level`` for livespace's, uvicorn's and the root logger, in format ``fmt``."""
    level = level.upper()
    formatter = "json" if fmt == "json" else "line"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "livespace.logs.RedactTokens"},
                    "quiet_sockets": {"()": "livespace.logs.SocketChatter"}},
        "formatters": {"line": {"()": "livespace.logs.LineFormatter"},
                       "json": {"()": "livespace.logs.JsonFormatter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level, "filters": ["quiet_sockets", "redact"]},
            "uvicorn.access": {
                "handlers": ["default"],
                "level": level,
                "propagate": False,
                "filters": ["redact"],
            },
        },
        "root": {"handlers": ["default"], "level": level},
    }


#: Pass to ``uvicorn.run(log_config=UVICORN_LOG_CONFIG)``.
UVICORN_LOG_CONFIG: dict[str, Any] = log_config("INFO")

_HANDLER_MARK = "_livespace_handler"


def setup_logging(level: str = "INFO", fmt: str = "line") -> None:
    """Configure stdlib logging for this process; safe to call more than once.

    Adds one stderr handler to the root logger (kept, not duplicated, on repeated calls)
    and puts :class:`RedactTokens` on every root handler and on the ``uvicorn.access`` and
    ``uvicorn.error`` loggers and their handlers.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    root = logging.getLogger()
    root.setLevel(numeric)
    if not any(getattr(h, _HANDLER_MARK, False) for h in root.handlers):
        ours = logging.StreamHandler(sys.stderr)
        ours.setFormatter(JsonFormatter() if fmt == "json" else LineFormatter())
        setattr(ours, _HANDLER_MARK, True)
        root.addHandler(ours)
    for handler in root.handlers:
        _add_filter(handler)
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        _add_filter(logger)
        for each in logger.handlers:
            _add_filter(each)


def _add_filter(target: logging.Filterer) -> None:
    if not any(isinstance(f, RedactTokens) for f in target.filters):
        target.addFilter(RedactTokens())


__all__ = [
    "FORMATS",
    "UVICORN_LOG_CONFIG",
    "JsonFormatter",
    "LineFormatter",
    "RedactTokens",
    "log_config",
    "redact",
    "setup_logging",
]
