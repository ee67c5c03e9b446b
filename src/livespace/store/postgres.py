"""The PostgreSQL engine of :class:`~livespace.store.sql.SqlStore` (an asyncpg pool).

asyncpg speaks ``$N`` natively, so SQL passes through unchanged. A transaction holds
one pooled connection for its duration (READ COMMITTED; :meth:`SqlStore.apply` makes
writers of one workspace queue on its row lock).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from livespace.store.db import Queries, Row

POOL_MIN = 1
POOL_MAX = 10


def _rowcount(status: str) -> int:
    """Rows changed, from a command tag such as ``DELETE 3`` or ``INSERT 0 1``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _Tx:
    """The query methods on the connection of one transaction."""

    def __init__(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        self.conn = conn

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        return await self.conn.fetchrow(sql, *args)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return list(await self.conn.fetch(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self.conn.execute(sql, *args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)  # pipelined: one round trip

    async def executescript(self, sql: str) -> None:
        await self.conn.execute(sql)  # no arguments: simple protocol, many statements


class PostgresDb:
    """:class:`~livespace.store.db.Db` over a pool of PostgreSQL connections."""

    dialect = "postgres"

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        self._pool = pool

    @classmethod
    async def connect(
        cls, url: str, *, min_size: int = POOL_MIN, max_size: int = POOL_MAX
    ) -> PostgresDb:
        # Custom plans only: asyncpg prepares every statement, and a generic plan made
        # while a table was small (a new database) is kept as it grows - a batch's ref
        # lookup then hash-joins the workspace's whole mutation_refs (seen: 100 ms at
        # 30,000 refs). Planning each execution costs ~1 ms of server CPU per batch.
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size,
                                         server_settings={"plan_cache_mode": "force_custom_plan"})
        return cls(pool)

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        return await self._pool.fetchrow(sql, *args)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._pool.fetch(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._pool.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self._pool.execute(sql, *args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._pool.executemany(sql, rows)

    async def executescript(self, sql: str) -> None:
        async with self.transaction() as tx:
            await tx.executescript(sql)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queries]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _Tx(conn)

    async def close(self) -> None:
        await self._pool.close()
