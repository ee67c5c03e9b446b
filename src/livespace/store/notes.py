"""The SQL of collaborative notes: their document updates, snapshots and body rows.

A note's shared document is stored as a snapshot (one merged state, ``note_snapshots``)
plus the updates appended since (``note_updates``, in id order). The document is the
snapshot with every update applied on top: CRDT updates commute and applying one twice
changes nothing, so a reader may see an update both in the snapshot and in the table.
That is what makes compaction safe without locks across nodes (see
:meth:`NoteDocs.compact_note`). :class:`NoteDocs` is mixed into
:class:`~livespace.store.sql.SqlStore`; the same SQL runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from livespace.store.db import Db, Queries
from livespace.store.model import NoteDoc
from livespace.store.rows import NOTE_SELECT, note_of
from livespace.times import now_iso

_NOTE = NOTE_SELECT
_UPDATE_NOTE = ("UPDATE notes SET body = $3, version = $4, updated_at = $5"
                " WHERE workspace_id = $1 AND id = $2")
_INSERT_UPDATE = "INSERT INTO note_updates (workspace_id, note_id, data, created_at)"


async def notes_by_id(tx: Queries, workspace_id: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The notes of ``workspace_id`` among ``ids`` (read inside a mutation batch)."""
    if not ids:
        return {}
    rows = await tx.fetchall(
        _NOTE + " WHERE workspace_id = $1 AND id IN ("
        + ", ".join(f"${n}" for n in range(2, 2 + len(ids))) + ")",
        workspace_id, *ids,
    )
    return {r["id"]: note_of(r) for r in rows}


async def write_note_bodies(tx: Queries, workspace_id: str, notes: Sequence[dict[str, Any]]
                            ) -> None:
    """Store the body and version of notes a batch changed (``note_updated``)."""
    if notes:
        await tx.executemany(_UPDATE_NOTE, [
            (workspace_id, n["id"], n["body"], n["version"], n["updated_at"]) for n in notes
        ])


class NoteDocs:
    """The note-document methods of :class:`~livespace.store.model.Store`."""

    db: Db

    async def note(self, workspace_id: str, note_id: str) -> dict[str, Any] | None:
        row = await self.db.fetchone(_NOTE + " WHERE workspace_id = $1 AND id = $2",
                                     workspace_id, note_id)
        return None if row is None else note_of(row)

    async def note_doc(self, workspace_id: str, note_id: str) -> NoteDoc | None:
        """The note and its stored document; None when the workspace has no such note.

        The updates are read before the snapshot: an update compacted away in between
        is in the snapshot read after it (compaction writes the snapshot and deletes
        the updates in one transaction), so nothing stored is missed.
        """
        note = await self.note(workspace_id, note_id)
        if note is None:
            return None
        updates = await self.db.fetchall(
            "SELECT id, data FROM note_updates WHERE workspace_id = $1 AND note_id = $2"
            " ORDER BY id", workspace_id, note_id,
        )
        snapshot, version = await self.note_snapshot(workspace_id, note_id)
        return NoteDoc(note, snapshot, version,
                       [(int(r["id"]), bytes(r["data"])) for r in updates])

    async def note_snapshot(self, workspace_id: str, note_id: str) -> tuple[bytes | None, int]:
        """The note's snapshot and its version (None, 0 before the first compaction)."""
        row = await self.db.fetchone(
            "SELECT version, data FROM note_snapshots WHERE workspace_id = $1 AND note_id = $2",
            workspace_id, note_id,
        )
        return (None, 0) if row is None else (bytes(row["data"]), int(row["version"]))

    async def append_note_updates(self, workspace_id: str, note_id: str,
                                  updates: list[bytes]) -> list[int]:
        """Append ``updates`` (in order, one transaction); return their ids."""
        if not updates:
            return []
        now = now_iso()
        async with self.db.transaction() as tx:
            if self.db.dialect == "postgres":
                rows = await tx.fetchall(
                    _INSERT_UPDATE + " SELECT $1, $2, u.data, $4 FROM unnest($3::bytea[])"
                    " WITH ORDINALITY AS u(data, n) ORDER BY u.n RETURNING id",
                    workspace_id, note_id, updates, now,
                )
                return sorted(int(r["id"]) for r in rows)
            ids = []
            for update in updates:
                ids.append(int(await tx.fetchval(
                    _INSERT_UPDATE + " VALUES ($1, $2, $3, $4) RETURNING id",
                    workspace_id, note_id, update, now,
                )))
            return ids

    async def compact_note(self, workspace_id: str, note_id: str, snapshot: bytes,
                           covered: list[int], base_version: int) -> bool:
        """Replace the snapshot of version ``base_version`` (0: none yet) by ``snapshot``
        and delete the updates ``covered`` (ids that ``snapshot`` includes), in one
        transaction. False, and nothing changed, when another compaction came first:
        ``snapshot`` must then be merged with the newer one and tried again."""
        now = now_iso()
        async with self.db.transaction() as tx:
            if base_version == 0:
                done = await tx.execute(
                    "INSERT INTO note_snapshots (workspace_id, note_id, version, data,"
                    " updated_at) VALUES ($1, $2, 1, $3, $4) ON CONFLICT DO NOTHING",
                    workspace_id, note_id, snapshot, now,
                )
            else:
                done = await tx.execute(
                    "UPDATE note_snapshots SET version = version + 1, data = $3,"
                    " updated_at = $4 WHERE workspace_id = $1 AND note_id = $2"
                    " AND version = $5", workspace_id, note_id, snapshot, now, base_version,
                )
            if done != 1:
                return False
            delete = ("DELETE FROM note_updates WHERE workspace_id = $1 AND note_id = $2"
                      " AND id")
            if self.db.dialect == "postgres":
                await tx.execute(delete + " = ANY($3::bigint[])", workspace_id, note_id,
                                 covered)
                return True
            for start in range(0, len(covered), 500):
                part = covered[start:start + 500]
                await tx.execute(
                    delete + " IN (" + ", ".join(f"${n}" for n in range(3, 3 + len(part)))
                    + ")", workspace_id, note_id, *part,
                )
        return True

    async def note_storage(self, workspace_id: str, note_id: str) -> dict[str, int]:
        """What a note's document takes in the store: updates kept and bytes."""
        row = await self.db.fetchone(
            "SELECT count(*) AS n, coalesce(sum(length(data)), 0) AS b FROM note_updates"
            " WHERE workspace_id = $1 AND note_id = $2", workspace_id, note_id,
        )
        snapshot, _ = await self.note_snapshot(workspace_id, note_id)
        assert row is not None
        return {"updates": int(row["n"]), "update_bytes": int(row["b"]),
                "snapshot_bytes": len(snapshot or b"")}
