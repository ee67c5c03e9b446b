"""The PostgreSQL engine of :class:`~livespace.store.sql.SqlStore` (an asyncpg pool).

asyncpg speaks ``$N`` natively, so SQL passes through unchanged. A transaction holds
one pooled connection for its duration (READ COMMITTED; :meth:`SqlStore.apply` makes
writers of one workspace queue on its row lock); a snapshot is a REPEATABLE READ READ
ONLY transaction.

Each new pooled connection reads the database's identity (:data:`IDENTITY`): the
cluster's system identifier (new on ``initdb``), the database's OID (new on ``CREATE
DATABASE``, so on a ``pg_restore`` into a fresh one) and the WAL timeline (new after a
point-in-time recovery or a promotion). It is part of every workspace's epoch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from livespace.store.db import Queries, Row

log = logging.getLogger(__name__)

POOL_MIN = 1
POOL_MAX = 10
#: The database's identity: cluster, database, timeline. ``pg_control_system()`` may be
#: refused to a role without pg_monitor: then only the database and timeline count.
IDENTITY = (
    "SELECT (SELECT oid FROM pg_database WHERE datname = current_database())::text"
    " || ':' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"
)
SYSTEM_IDENTIFIER = "SELECT system_identifier::text FROM pg_control_system()"


def _rowcount(status: str) -> int:
    """Rows changed, from a command tag such as ``DELETE 3`` or ``INSERT 0 1``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _Queries:
    """The query methods over :attr:`_on`, a pool or one connection (asyncpg gives both
    the same ones: on a pool each call takes a connection for itself)."""

    _on: asyncpg.Pool[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        return await self._on.fetchrow(sql, *args)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._on.fetch(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._on.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self._on.execute(sql, *args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._on.executemany(sql, rows)  # pipelined: one round trip


class _Tx(_Queries):
    """The query methods on the connection of one transaction."""

    def __init__(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        self._on = conn

    async def executescript(self, sql: str) -> None:
        await self._on.execute(sql)  # no arguments: simple protocol, many statements


class PostgresDb(_Queries):
    """:class:`~livespace.store.db.Db` over a pool of PostgreSQL connections."""

    dialect = "postgres"
    _on: asyncpg.Pool[asyncpg.Record]

    def __init__(self) -> None:
        self.identity = ""  # set by each new pooled connection (see the module's docstring)

    @classmethod
    async def connect(
        cls, url: str, *, min_size: int = POOL_MIN, max_size: int = POOL_MAX
    ) -> PostgresDb:
        # Custom plans only: asyncpg prepares every statement, and a generic plan made
        # while a table was small (a new database) is kept as it grows - a batch's ref
        # lookup then hash-joins the workspace's whole mutation_refs (seen: 100 ms at
        # 30,000 refs). Planning each execution costs ~1 ms of server CPU per batch.
        db = cls()
        db._on = await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, init=db._identify,
            server_settings={"plan_cache_mode": "force_custom_plan"})
        return db

    async def _identify(self, conn: asyncpg.Connection[asyncpg.Record]) -> None:
        self.identity = await _identity(conn)

    async def executescript(self, sql: str) -> None:
        async with self.transaction() as tx:
            await tx.executescript(sql)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queries]:
        async with self._on.acquire() as conn, conn.transaction():
            yield _Tx(conn)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Queries]:
        async with self._on.acquire() as conn, conn.transaction(
            isolation="repeatable_read", readonly=True
        ):
            yield _Tx(conn)

    async def close(self) -> None:
        await self._on.close()


async def _identity(conn: asyncpg.Connection[asyncpg.Record]) -> str:
    """A short digest of the database's identity (see the module's docstring)."""
    parts = [str(await conn.fetchval(IDENTITY))]
    try:
        parts.append(str(await conn.fetchval(SYSTEM_IDENTIFIER)))
    except asyncpg.InsufficientPrivilegeError:
        log.warning("pg_control_system() refused: a restore into the same cluster and"
                    " database is told from the original by its timeline only")
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:8]
