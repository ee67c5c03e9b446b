"""Workspaces, their members, and reads of their contacts and notes."""

from __future__ import annotations

import uuid
from typing import Any

from livespace.codes import Error, Problem
from livespace.commands import ROLES
from livespace.store.db import Db
from livespace.store.domain import not_found
from livespace.store.model import Member, Workspace
from livespace.store.positions import new_epoch
from livespace.store.rows import CONTACT_SELECT, NOTE_SELECT, contact_of, note_of
from livespace.times import now_iso


class Workspaces:
    """The part of :class:`~livespace.store.sql.SqlStore` for workspaces and members."""

    db: Db

    # ---- workspaces and members ------------------------------------------------------------

    async def create_workspace(self, name: str, owner_id: str) -> Workspace:
        workspace_id, now = uuid.uuid4().hex, now_iso()
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO workspaces (id, name, created_at, epoch) VALUES ($1, $2, $3, $4)",
                workspace_id, name, now, new_epoch(),
            )
            await tx.execute(
                "INSERT INTO members (workspace_id, user_id, role, added_at)"
                " VALUES ($1, $2, 'owner', $3)",
                workspace_id, owner_id, now,
            )
        return Workspace(workspace_id, name, now, 0, "owner")

    async def get_workspace(self, workspace_id: str) -> Workspace | None:
        row = await self.db.fetchone(
            "SELECT id, name, created_at, head_seq FROM workspaces"
            " WHERE id = $1 AND deleted_at IS NULL",
            workspace_id,
        )
        if row is None:
            return None
        return Workspace(row["id"], row["name"], row["created_at"], int(row["head_seq"]))

    async def delete_workspace(self, workspace_id: str) -> bool:
        """Soft delete: the workspace then reads as unknown everywhere."""
        return 0 < await self.db.execute(
            "UPDATE workspaces SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL",
            workspace_id, now_iso(),
        )

    async def workspaces_of(self, user_id: str) -> list[Workspace]:
        rows = await self.db.fetchall(
            "SELECT w.id, w.name, w.created_at, w.head_seq, m.role FROM workspaces w"
            " JOIN members m ON m.workspace_id = w.id"
            " WHERE m.user_id = $1 AND w.deleted_at IS NULL ORDER BY w.created_at, w.id",
            user_id,
        )
        return [
            Workspace(r["id"], r["name"], r["created_at"], int(r["head_seq"]), r["role"])
            for r in rows
        ]

    async def role_of(self, workspace_id: str, user_id: str) -> str | None:
        role: str | None = await self.db.fetchval(
            "SELECT m.role FROM members m JOIN workspaces w ON w.id = m.workspace_id"
            " WHERE m.workspace_id = $1 AND m.user_id = $2 AND w.deleted_at IS NULL",
            workspace_id, user_id,
        )
        return role

    async def set_member(self, workspace_id: str, user_id: str, role: str) -> Member:
        """Add a member or change their role (``added_at`` is kept). Unknown or deleted
        workspace: not_found; a role outside :data:`~livespace.commands.ROLES`:
        validation_failed."""
        if role not in ROLES:
            raise Problem(
                Error.VALIDATION_FAILED, f"role must be one of {', '.join(ROLES)}",
                details={"field": "role", "reason": "unknown role"},
            )
        async with self.db.transaction() as tx:
            if await tx.fetchval(
                "SELECT 1 FROM workspaces WHERE id = $1 AND deleted_at IS NULL", workspace_id
            ) is None:
                raise not_found("workspace", workspace_id)
            added_at = await tx.fetchval(
                "INSERT INTO members (workspace_id, user_id, role, added_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, user_id)"
                " DO UPDATE SET role = excluded.role RETURNING added_at",
                workspace_id, user_id, role, now_iso(),
            )
        return Member(workspace_id, user_id, role, added_at)

    async def remove_member(self, workspace_id: str, user_id: str) -> bool:
        return 0 < await self.db.execute(
            "DELETE FROM members WHERE workspace_id = $1 AND user_id = $2",
            workspace_id, user_id,
        )

    async def roles(self, workspace_id: str, limit: int) -> dict[str, str] | None:
        """user id -> role of every member, or None when there are more than ``limit``."""
        rows = await self.db.fetchall(
            "SELECT user_id, role FROM members WHERE workspace_id = $1 LIMIT $2",
            workspace_id, limit + 1)
        if len(rows) > limit:
            return None
        return {str(r["user_id"]): str(r["role"]) for r in rows}

    async def members(self, workspace_id: str) -> list[Member]:
        rows = await self.db.fetchall(
            "SELECT workspace_id, user_id, role, added_at FROM members"
            " WHERE workspace_id = $1 ORDER BY added_at, user_id",
            workspace_id,
        )
        return [Member(r["workspace_id"], r["user_id"], r["role"], r["added_at"]) for r in rows]

    # ---- contacts and notes ------------------------------------------------------------------

    async def get_contact(
        self, workspace_id: str, contact_id: str, *, include_deleted: bool = False
    ) -> dict[str, Any] | None:
        row = await self.db.fetchone(
            CONTACT_SELECT + " WHERE workspace_id = $1 AND id = $2 AND ($3 OR deleted_at IS NULL)",
            workspace_id, contact_id, include_deleted,
        )
        return None if row is None else contact_of(row)

    async def contacts(
        self, workspace_id: str, *, after: str | None, limit: int, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        """Contacts in id order, ids greater than ``after`` (keyset pagination)."""
        rows = await self.db.fetchall(
            CONTACT_SELECT + " WHERE workspace_id = $1 AND id > $2 AND ($3 OR deleted_at IS NULL)"
            " ORDER BY id LIMIT $4",
            workspace_id, after or "", include_deleted, limit,
        )
        return [contact_of(r) for r in rows]

    async def notes(self, workspace_id: str, contact_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            NOTE_SELECT + " WHERE workspace_id = $1 AND contact_id = $2 ORDER BY created_at, id",
            workspace_id, contact_id,
        )
        return [note_of(r) for r in rows]
