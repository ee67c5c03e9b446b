"""The one implementation of :class:`~livespace.store.model.Store`, over a
:class:`~livespace.store.db.Db`.

All domain SQL is written once with ``$1, $2`` placeholders and portable between
SQLite (3.35+) and PostgreSQL; the engine modules (:mod:`.sqlite`, :mod:`.postgres`)
only run it. The few expressions that differ between engines live in views of the
per-dialect migrations (``session_durations``). By concern:

- :mod:`.log`: the event log and its group commit (the SQL of a batch in :mod:`.batch`);
- :mod:`.workspaces`: workspaces, members, contacts and notes;
- :mod:`.positions`: epochs, log positions, lists as one consistent read;
- :mod:`.compaction`: compacted replay (each contact's latest event, every note event);
- :mod:`.analytics`: delivery receipts, sessions, figures;
- :mod:`.notes`: collaborative notes' documents (updates, snapshots).
"""

from __future__ import annotations

from livespace.store.analytics import Analytics
from livespace.store.compaction import Compaction
from livespace.store.log import EventLog
from livespace.store.migrate import migrate
from livespace.store.notes import NoteDocs
from livespace.store.positions import Positions
from livespace.store.workspaces import Workspaces


class SqlStore(EventLog, Workspaces, Positions, Compaction, Analytics, NoteDocs):
    """:class:`~livespace.store.model.Store` over SQLite or PostgreSQL (see the contract
    there). Keeps no durable state of its own besides the :class:`Db` (only the queues
    of mutations waiting for their workspace's committer): several instances, in one
    process or many, may share a database."""

    async def migrate(self) -> list[str]:
        return await migrate(self.db)

    async def close(self) -> None:
        """Commit what is queued, then close the database."""
        await self.drain()
        await self.db.close()

    async def ping(self) -> bool:
        return bool(await self.db.fetchval("SELECT 1") == 1)


__all__ = ["SqlStore"]
