"""Positions in a workspace's log: epochs and lists that are one consistent read.

The part of :class:`~livespace.store.sql.SqlStore` that clients resuming or loading a
snapshot rely on (portable ``$N`` SQL, like the rest of the store).

An epoch names one incarnation of a workspace's log (DESIGN.md section 1). What a
client sees is the workspace's stored random token, minted when the workspace is
created (or by migration 0002, or by ``livespace epoch renew``), followed on PostgreSQL
by the database's identity (:attr:`~livespace.store.db.Db.identity`). docs/replay.md
says what that detects and what it does not.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from livespace.store.db import Db, Row
from livespace.store.model import Listing, Position
from livespace.store.rows import CONTACT_SELECT, NOTE_SELECT, contact_of, note_of


def new_epoch() -> str:
    """A workspace's stored epoch token: 64 random bits as 16 hex digits."""
    return secrets.token_hex(8)


def epoch_of(db: Db, stored: str) -> str:
    """The epoch clients see: the stored token, then the database's identity if any."""
    return f"{stored}.{db.identity}" if db.identity else stored


_POSITION = (
    "SELECT w.epoch, w.head_seq, (SELECT min(e.seq) FROM events e WHERE e.workspace_id = w.id)"
    " AS oldest FROM workspaces w WHERE w.id = $1 AND w.deleted_at IS NULL"
)
_HEAD = "SELECT epoch, head_seq FROM workspaces WHERE id = $1 AND deleted_at IS NULL"
_CONTACT_PAGE = (CONTACT_SELECT + " WHERE workspace_id = $1 AND id > $2"
                 " AND ($3 OR deleted_at IS NULL) ORDER BY id LIMIT $4")
_LIVE_CONTACT = "SELECT 1 FROM contacts WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL"
_NOTES = NOTE_SELECT + " WHERE workspace_id = $1 AND contact_id = $2 ORDER BY created_at, id"


class Positions:
    """Epochs, log positions and consistent lists."""

    db: Db

    async def position(self, workspace_id: str) -> Position | None:
        row = await self.db.fetchone(_POSITION, workspace_id)
        if row is None:
            return None
        head = int(row["head_seq"])
        oldest = head + 1 if row["oldest"] is None else int(row["oldest"])
        return Position(epoch_of(self.db, row["epoch"]), head, oldest)

    async def renew_epoch(self, workspace_id: str | None = None) -> int:
        """New random epochs (one per workspace): clients holding an old one resync."""
        async with self.db.transaction() as tx:
            ids = [r["id"] for r in await tx.fetchall(
                "SELECT id FROM workspaces WHERE deleted_at IS NULL AND"
                " (CAST($1 AS TEXT) IS NULL OR id = $1)", workspace_id)]
            for ws in ids:
                await tx.execute("UPDATE workspaces SET epoch = $2 WHERE id = $1", ws,
                                 new_epoch())
        return len(ids)

    async def contact_list(
        self, workspace_id: str, *, after: str | None, limit: int, include_deleted: bool = False
    ) -> Listing | None:
        return await self._listing(workspace_id, _CONTACT_PAGE, after or "", include_deleted,
                                   limit, convert=contact_of)

    async def note_list(self, workspace_id: str, contact_id: str) -> Listing | None:
        return await self._listing(workspace_id, _NOTES, contact_id, check=_LIVE_CONTACT,
                                   convert=note_of)

    async def _listing(
        self, workspace_id: str, sql: str, *args: Any, check: str | None = None,
        convert: Callable[[Row], dict[str, Any]],
    ) -> Listing | None:
        """Rows of ``sql`` (``$1`` is the workspace) and the head they reflect, in one
        snapshot; None when the workspace is unknown or ``check`` (a query on the same
        arguments) finds no row."""
        async with self.db.snapshot() as q:
            head = await q.fetchone(_HEAD, workspace_id)
            if head is None:
                return None
            if check is not None and await q.fetchone(check, workspace_id, *args) is None:
                return None
            rows = await q.fetchall(sql, workspace_id, *args)
        return Listing([convert(r) for r in rows], int(head["head_seq"]),
                       epoch_of(self.db, head["epoch"]))
