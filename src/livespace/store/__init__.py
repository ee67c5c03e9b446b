"""The durable side of livespace: workspaces, members, contacts, notes and the event log.

:class:`Store` is the one interface; :func:`open_store` picks the engine from the URL
(``sqlite:///path`` or ``postgresql://...``), importing its driver lazily.
"""

from __future__ import annotations

from datetime import timedelta

from livespace.commands import REF_LIFETIME
from livespace.store.model import (
    Actor,
    Committed,
    Event,
    Listing,
    Member,
    Position,
    SessionRow,
    Store,
    Workspace,
)
from livespace.times import iso_ago


async def open_store(url: str) -> Store:
    """Connect to the store at ``url`` (not migrated: call :meth:`Store.migrate`)."""
    from livespace.store.sql import SqlStore

    if url.startswith(("postgresql://", "postgres://")):
        from livespace.store.postgres import PostgresDb

        return SqlStore(await PostgresDb.connect(url))
    if url.startswith("sqlite://"):
        from livespace.store.sqlite import SqliteDb

        # sqlite:///relative.db or sqlite:////absolute/path.db, as SQLAlchemy spells them
        return SqlStore(await SqliteDb.connect(url.removeprefix("sqlite:///")))
    raise ValueError(f"unsupported DATABASE_URL scheme: {url.split(':', 1)[0]!r}")


async def cleanup(store: Store, retention_days: int) -> tuple[str, dict[str, int]]:
    """The retention sweep: events and closed sessions older than ``retention_days``,
    refs past their lifetime. Returns the cutoff and how many of each went."""
    cutoff = iso_ago(timedelta(days=retention_days))
    return cutoff, {
        "events": await store.delete_events_before(cutoff),
        "refs": await store.delete_refs_before(iso_ago(REF_LIFETIME)),
        "sessions": await store.delete_sessions_before(cutoff),
    }


__all__ = [
    "Actor",
    "Committed",
    "Event",
    "Listing",
    "Member",
    "Position",
    "SessionRow",
    "Store",
    "Workspace",
    "cleanup",
    "open_store",
]
