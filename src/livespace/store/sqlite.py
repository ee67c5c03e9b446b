"""The SQLite engine of :class:`~livespace.store.sql.SqlStore` (aiosqlite).

Three connections to one file in WAL mode: a writer, used by one transaction at a time
(an ``asyncio.Lock`` in this process, ``BEGIN IMMEDIATE`` plus ``busy_timeout`` against
other processes), a query-only reader, so long replays never hold up a write, and a
query-only one for :meth:`SqliteDb.snapshot` (a read transaction there would hold its
snapshot for every other read sharing the connection), one snapshot at a time.
``$N`` placeholders become SQLite's ``?N``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from livespace.store.db import Queries, Row

BUSY_TIMEOUT_MS = 10_000
_PLACEHOLDER = re.compile(r"\$(\d+)")


@functools.lru_cache(maxsize=512)
def _sqlite_sql(sql: str) -> str:
    """``$1`` -> ``?1`` (our SQL has no ``$`` inside string literals)."""
    return _PLACEHOLDER.sub(r"?\1", sql)


def statements(script: str) -> list[str]:
    """Split a script into complete statements (so they can run inside a transaction;
    ``executescript`` would commit first)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in pending.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of the script: {pending[:80]!r}")
    return out


class _Queries:
    """The query methods over one aiosqlite connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        async with self.conn.execute(_sqlite_sql(sql), args) as cur:
            row: Row | None = await cur.fetchone()
            return row

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return list(await self.conn.execute_fetchall(_sqlite_sql(sql), args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.conn.execute(_sqlite_sql(sql), args) as cur:
            row = await cur.fetchone()
            return None if row is None else row[0]

    async def execute(self, sql: str, *args: Any) -> int:
        async with self.conn.execute(_sqlite_sql(sql), args) as cur:
            return int(cur.rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self.conn.executemany(_sqlite_sql(sql), rows):
            pass

    async def executescript(self, sql: str) -> None:
        for statement in statements(sql):
            await _run(self.conn, statement)


class SqliteDb:
    """:class:`~livespace.store.db.Db` over one SQLite file."""

    dialect = "sqlite"
    identity = ""  # a file restored from a copy cannot be told from the original

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection,
                 snapshots: aiosqlite.Connection | None = None) -> None:
        self._writer = _Queries(writer)
        self._reader = _Queries(reader)
        self._snapshots = None if snapshots is None else _Queries(snapshots)
        self._lock = asyncio.Lock()
        self._snapshot_lock = asyncio.Lock()

    @classmethod
    async def connect(cls, path: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> SqliteDb:
        """Open (creating it and its folder if need be) the database at ``path``.

        ``:memory:`` gets one connection for reads and writes (two would be two databases).
        """
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        writer = await _open(path, busy_timeout_ms)
        try:
            await _run(writer, "PRAGMA journal_mode = WAL")
            if path == ":memory:":
                return cls(writer, writer)
            reader = await _open(path, busy_timeout_ms, "PRAGMA query_only = ON")
        except BaseException:
            await writer.close()
            raise
        try:
            snapshots = await _open(path, busy_timeout_ms, "PRAGMA query_only = ON")
        except BaseException:
            await reader.close()
            await writer.close()
            raise
        return cls(writer, reader, snapshots)

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        return await self._reader.fetchone(sql, *args)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return await self._reader.fetchall(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._reader.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._lock:
            return await self._writer.execute(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(sql, rows)

    async def executescript(self, sql: str) -> None:
        async with self.transaction() as tx:
            await tx.executescript(sql)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queries]:
        async with self._lock:
            conn = self._writer.conn
            try:
                await _run(conn, "BEGIN IMMEDIATE")
                yield self._writer
                await _run(conn, "COMMIT")
            except BaseException:
                # Even when cancelled: aiosqlite runs a connection's calls in order, so
                # this ROLLBACK comes after a BEGIN or COMMIT still queued (harmless when
                # no transaction is open) and the next transaction starts clean.
                with contextlib.suppress(sqlite3.OperationalError):
                    await _run(conn, "ROLLBACK")
                raise

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Queries]:
        if self._snapshots is None:  # :memory: has one connection: read under the writer's lock
            async with self._lock:
                yield self._writer
            return
        async with self._snapshot_lock:
            conn = self._snapshots.conn
            await _run(conn, "BEGIN")  # deferred: the first read takes the snapshot
            try:
                yield self._snapshots
            finally:
                with contextlib.suppress(sqlite3.OperationalError):
                    await _run(conn, "COMMIT")

    async def close(self) -> None:
        if self._snapshots is not None:
            await self._snapshots.conn.close()
        if self._reader.conn is not self._writer.conn:
            await self._reader.conn.close()
        await self._writer.conn.close()


async def _open(path: str, busy_timeout_ms: int, *pragmas: str) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)  # we BEGIN ourselves
    conn.row_factory = aiosqlite.Row
    try:
        for pragma in (
            f"PRAGMA busy_timeout = {int(busy_timeout_ms)}",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA foreign_keys = ON",
            *pragmas,
        ):
            await _run(conn, pragma)
    except BaseException:
        await conn.close()
        raise
    return conn


async def _run(conn: aiosqlite.Connection, sql: str) -> None:
    """Run one statement and close its cursor at once (an open one holds a lock)."""
    async with conn.execute(sql):
        pass
