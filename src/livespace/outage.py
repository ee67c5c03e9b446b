"""Which failures are outages (the store or broker cannot be reached) rather than bugs.

An outage is answered with ``unavailable`` and ``retry_after`` (socket) or 503 with
``Retry-After`` (HTTP): nothing was applied, and the same request with the same ``ref``
(``Idempotency-Key``) sent again is applied once. (When a connection is cut between a
commit and its reply, the change may have been applied: the retry then gets the first
acknowledgement again and makes no second event.)
"""

from __future__ import annotations

import sqlite3

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from livespace.codes import Error, Problem

#: Seconds a client is told to wait before retrying after an outage.
RETRY_AFTER_S = 1.0

_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable
    TimeoutError,
    asyncpg.PostgresConnectionError,  # the connection died (mid-query included)
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.InterfaceError,  # "connection is closed", a pool closing
    RedisConnectionError,
    RedisTimeoutError,
)


def is_outage(error: BaseException) -> bool:
    """True for a failure to reach the store or the broker."""
    if isinstance(error, sqlite3.OperationalError):
        return "locked" in str(error) or "unable to open" in str(error)
    return isinstance(error, _OUTAGES)


def unavailable(what: str = "the store") -> Problem:
    return Problem(Error.UNAVAILABLE, f"{what} cannot be reached: nothing was applied; "
                   "retry with the same ref", retry_after=RETRY_AFTER_S)
