"""Schema migrations: numbered ``.sql`` files per dialect, applied once each, in order.

``store/migrations/<dialect>/NNNN_name.sql`` ships with the package; the table
``schema_migrations(version, applied_at)`` records which ran. :func:`migrate` applies
the missing ones in one transaction, so a failed migration leaves nothing half done.
Two processes migrating at once are safe: on PostgreSQL the second waits on an
advisory lock, on SQLite on the write lock (``BEGIN IMMEDIATE``), and then finds
nothing left to do.
"""

from __future__ import annotations

from importlib import resources

from livespace.store.db import Db
from livespace.times import now_iso

#: pg_advisory_xact_lock key of livespace migrations (any constant bigint will do).
PG_LOCK_KEY = 0x6C69766573706163  # "livespac"

_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version     TEXT PRIMARY KEY,
    applied_at  TEXT NOT NULL
);"""


def available(dialect: str) -> list[tuple[str, str]]:
    """``(version, sql)`` of every migration of ``dialect``, in order."""
    folder = resources.files("livespace.store") / "migrations" / dialect
    files = sorted(
        (f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name
    )
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


async def migrate(db: Db) -> list[str]:
    """Apply the migrations ``db`` lacks; return their versions (empty when up to date)."""
    todo = available(db.dialect)
    if not todo:
        raise RuntimeError(f"no migrations packaged for {db.dialect!r}")
    async with db.transaction() as tx:
        if db.dialect == "postgres":
            await tx.execute("SELECT pg_advisory_xact_lock($1)", PG_LOCK_KEY)
        await tx.executescript(_TABLE)
        done = {r["version"] for r in await tx.fetchall("SELECT version FROM schema_migrations")}
        applied: list[str] = []
        for version, sql in todo:
            if version in done:
                continue
            await tx.executescript(sql)
            await tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                version, now_iso(),
            )
            applied.append(version)
    return applied
