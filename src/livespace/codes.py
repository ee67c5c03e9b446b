"""Every close code and error code livespace sends, and what a client should do about it.

Close codes end a connection; error codes answer one frame and never close anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Close(IntEnum):
    """WebSocket close codes (DESIGN.md section 2)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED = 1003  # a text frame on a note document socket (binary only)
    MALFORMED = 1007  # a malformed y-websocket message on a note document socket
    TOO_BIG = 1009  # a frame over LIVESPACE_MAX_FRAME (notes: also a full document)
    INTERNAL = 1011  # the server could not store a note update: reconnect
    RESTARTING = 1012  # server draining: reconnect elsewhere with since
    UNAUTHORIZED = 4001  # no, invalid or expired token at connect
    FORBIDDEN = 4003  # not a member, unknown workspace, or membership revoked
    POLICY = 4008  # rate limit abused, too many connections
    TOO_SLOW = 4009  # fell behind: reconnect with since
    TOKEN_EXPIRED = 4010  # token expired while connected and was not refreshed


@dataclass(frozen=True, slots=True)
class CloseCode:
    """What a close code means to a client, and whether it should reconnect.

    ``reconnect``: connect again (with backoff and jitter, resuming with ``since``) and it
    can work; False: the same connect fails the same way until something else changes
    (the token, the membership, the client's code). ``before``: what to do first.
    """

    code: int
    meaning: str
    reconnect: bool
    before: str = ""


#: Every close code livespace sends, by code (the SDKs mirror this table).
CLOSE_CODES: dict[int, CloseCode] = {c.code: c for c in (
    CloseCode(Close.NORMAL, "not sent by livespace: a close the client did not ask for is "
              "a proxy's or an intermediary's", reconnect=True),
    CloseCode(Close.GOING_AWAY, "the server is shutting down", reconnect=True),
    CloseCode(Close.UNSUPPORTED, "a text frame on a note document socket (binary only)",
              reconnect=False),
    CloseCode(Close.MALFORMED, "a malformed y-websocket message on a note document socket",
              reconnect=False),
    CloseCode(Close.TOO_BIG, "a frame over the size limit (notes: a full document)",
              reconnect=True, before="drop the frame that was too big"),
    CloseCode(Close.INTERNAL, "the server could not store a note update", reconnect=True),
    CloseCode(Close.RESTARTING, "the server is restarting, draining or cannot reach its store",
              reconnect=True, before="reconnect elsewhere if there are several nodes"),
    CloseCode(Close.UNAUTHORIZED, "no, invalid or expired token at connect", reconnect=False,
              before="a client that can get a new token may try once with it"),
    CloseCode(Close.FORBIDDEN, "not a member, unknown workspace, or membership revoked",
              reconnect=False),
    CloseCode(Close.POLICY, "rate limit abused or too many connections", reconnect=True,
              before="back off (seconds, not milliseconds)"),
    CloseCode(Close.TOO_SLOW, "the client fell too far behind", reconnect=True),
    CloseCode(Close.TOKEN_EXPIRED, "the token expired while connected and was not refreshed",
              reconnect=True, before="get a new token"),
)}


def should_reconnect(code: int) -> bool:
    """Whether a client should reconnect after ``code`` (a close it did not ask for).
    Codes not in :data:`CLOSE_CODES` (1006: no close frame, the network; a proxy's; a
    newer server's): yes, with backoff - giving up could leave an application silently
    stale, retrying costs a bounded number of attempts."""
    known = CLOSE_CODES.get(code)
    return True if known is None else known.reconnect


class Error(StrEnum):
    """Codes of ``error`` frames and of HTTP error bodies."""

    INVALID_JSON = "invalid_json"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_TYPE = "unknown_type"
    VALIDATION_FAILED = "validation_failed"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    RESYNC_REQUIRED = "resync_required"
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"  # the store or broker cannot be reached: retry the same ref
    INTERNAL = "internal"


#: HTTP status for each error code on the REST API.
HTTP_STATUS: dict[Error, int] = {
    Error.INVALID_JSON: 400,
    Error.INVALID_MESSAGE: 400,
    Error.UNKNOWN_TYPE: 400,
    Error.VALIDATION_FAILED: 422,
    Error.UNAUTHORIZED: 401,
    Error.FORBIDDEN: 403,
    Error.NOT_FOUND: 404,
    Error.CONFLICT: 409,
    Error.RATE_LIMITED: 429,
    Error.RESYNC_REQUIRED: 410,
    Error.TOO_LARGE: 413,
    Error.UNAVAILABLE: 503,
    Error.INTERNAL: 500,
}


class Problem(Exception):
    """A request that cannot be served, with the code the client sees.

    Raised anywhere below the edges; the socket turns it into an ``error`` frame,
    the HTTP API into ``{"error": {...}}`` with :data:`HTTP_STATUS`.
    """

    def __init__(
        self,
        code: Error,
        message: str,
        *,
        details: object | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"Problem({self.code.value!r}, {self.message!r})"
