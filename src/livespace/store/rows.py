"""Stored rows read back as the records clients see, and the SELECTs that give them."""

from __future__ import annotations

from typing import Any

import orjson

from livespace.store.db import Row
from livespace.store.model import Actor, Event, SessionRow

CONTACT_SELECT = """SELECT workspace_id, id, name, email, phone, company, tags, fields, version,
    field_versions, created_at, updated_at, created_by, deleted_at FROM contacts"""
SESSION_SELECT = """SELECT id, workspace_id, user_id, node, connected_at, disconnected_at,
    messages_in, messages_out, events_delivered, events_acked, close_code, extra
    FROM sessions"""


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def contact_of(row: Row) -> dict[str, Any]:
    """A contact row as clients see it; a tombstone also has ``deleted_at``/``deleted``."""
    out: dict[str, Any] = {
        "id": row["id"],
        "workspace_id": row["workspace_id"],
        "name": row["name"],
        "email": row["email"],
        "phone": row["phone"],
        "company": row["company"],
        "tags": orjson.loads(row["tags"]),
        "fields": orjson.loads(row["fields"]),
        "version": int(row["version"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "created_by": row["created_by"],
    }
    if row["deleted_at"] is not None:
        out["deleted_at"] = row["deleted_at"]
        out["deleted"] = True
    return out


NOTE_SELECT = """SELECT workspace_id, id, contact_id, body, author_id, author_name, created_at,
    version, updated_at FROM notes"""


def note_of(row: Row) -> dict[str, Any]:
    """A note row as clients see it (``version`` 1 and ``updated_at`` = ``created_at``
    until its document first changes its body: docs/collaboration.md)."""
    return {
        "id": row["id"],
        "workspace_id": row["workspace_id"],
        "contact_id": row["contact_id"],
        "body": row["body"],
        "author": {"id": row["author_id"], "name": row["author_name"]},
        "created_at": row["created_at"],
        "version": int(row["version"]),
        "updated_at": row["updated_at"] or row["created_at"],
    }


def event_of(row: Row) -> Event:
    return Event(
        workspace_id=row["workspace_id"],
        seq=int(row["seq"]),
        event_id=row["event_id"],
        type=row["type"],
        actor=Actor(row["actor_id"], row["actor_name"]),
        ts=row["created_at"],
        data=orjson.loads(row["data"]),
    )


def session_of(row: Row) -> SessionRow:
    return SessionRow(
        id=row["id"],
        workspace_id=row["workspace_id"],
        user_id=row["user_id"],
        node=row["node"],
        connected_at=row["connected_at"],
        disconnected_at=row["disconnected_at"],
        messages_in=int(row["messages_in"]),
        messages_out=int(row["messages_out"]),
        events_delivered=int(row["events_delivered"]),
        events_acked=int(row["events_acked"]),
        close_code=row["close_code"],
        extra=orjson.loads(row["extra"]),
    )
