"""The connection layer every engine provides: run SQL with ``$N`` placeholders.

:class:`Db` is what :class:`~livespace.store.sql.SqlStore` and the migrations run on;
the engines (:mod:`.sqlite`, :mod:`.postgres`) implement it and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol


class Row(Protocol):
    """A result row: ``row["column"]`` (sqlite3.Row and asyncpg.Record both are)."""

    def __getitem__(self, key: str, /) -> Any: ...


class Queries(Protocol):
    """Running SQL with ``$N`` placeholders, outside or inside a transaction."""

    async def fetchone(self, sql: str, *args: Any) -> Row | None: ...
    async def fetchall(self, sql: str, *args: Any) -> list[Row]: ...
    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or None when there is no row."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; return the number of rows it changed."""

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement once per row of arguments (in one round trip where the
        driver can)."""

    async def executescript(self, sql: str) -> None:
        """Run several ``;``-separated statements without parameters (migrations)."""


class Db(Queries, Protocol):
    """One database engine as :class:`SqlStore` needs it.

    Outside :meth:`transaction`, ``fetch*`` are reads (on SQLite they may run on a
    read-only connection): a write that returns rows goes in a transaction. Each
    ``execute`` outside a transaction commits on its own.
    """

    #: ``"sqlite"`` or ``"postgres"``: the folder of its migrations.
    dialect: str
    #: What the engine tells of the database's own identity (on PostgreSQL: cluster,
    #: database and WAL timeline), part of every workspace's epoch; "" when it tells
    #: nothing (SQLite: a copied file is the same file).
    identity: str

    def transaction(self) -> AbstractAsyncContextManager[Queries]:
        """Commit on normal exit, roll back when the block raises.

        Writers are serialised at least per workspace by the first statement of
        :meth:`SqlStore.apply` (the workspace row lock), on SQLite globally.
        """

    def snapshot(self) -> AbstractAsyncContextManager[Queries]:
        """A read-only transaction whose statements all see one snapshot of the
        database (a list and the head it reflects)."""

    async def close(self) -> None: ...
