"""The one implementation of :class:`~livespace.store.model.Store`, over any :class:`Db`.

All domain SQL lives here, written once with ``$1, $2`` placeholders and portable
between SQLite (3.35+) and PostgreSQL; the engine modules (:mod:`.sqlite`,
:mod:`.postgres`) only run it. The few expressions that differ between engines live
in views of the per-dialect migrations (``session_durations``).
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from livespace.codes import Error, Problem
from livespace.protocol import (
    CONTACT_FIELDS,
    ROLES,
    AddNote,
    CreateContact,
    DeleteContact,
    Mutation,
    UpdateContact,
    now_iso,
)
from livespace.store.model import Actor, Committed, Event, Member, SessionRow, Workspace

#: How long a mutation ``ref`` is remembered for idempotent retries (DESIGN.md section 1).
REF_TTL_S = 24 * 3600
#: At most this many rows from :meth:`SqlStore.sessions`.
SESSIONS_LIMIT = 1000


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

    def transaction(self) -> AbstractAsyncContextManager[Queries]:
        """Commit on normal exit, roll back when the block raises.

        Writers are serialised at least per workspace by the first statement of
        :meth:`SqlStore.apply` (the workspace row lock), on SQLite globally.
        """

    async def close(self) -> None: ...


class _Retry(Exception):
    """Raised inside :meth:`SqlStore.apply` to roll back and answer an idempotent retry."""

    def __init__(self, committed: Committed) -> None:
        super().__init__("retry")
        self.committed = committed


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _contact(row: Row) -> dict[str, Any]:
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


def _note(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "workspace_id": row["workspace_id"],
        "contact_id": row["contact_id"],
        "body": row["body"],
        "author": {"id": row["author_id"], "name": row["author_name"]},
        "created_at": row["created_at"],
    }


def _event(row: Row) -> Event:
    return Event(
        workspace_id=row["workspace_id"],
        seq=int(row["seq"]),
        event_id=row["event_id"],
        type=row["type"],
        actor=Actor(row["actor_id"], row["actor_name"]),
        ts=row["created_at"],
        data=orjson.loads(row["data"]),
    )


def _session(row: Row) -> SessionRow:
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


def _iso(moment: datetime) -> str:
    """``moment`` as :func:`~livespace.protocol.now_iso` writes it, so text compares as time."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cutoff(cutoff_iso: str) -> str:
    """Any ISO-8601 instant (``Z``, ``+00:00``, no fraction...) in the stored form."""
    moment = datetime.fromisoformat(cutoff_iso)
    return _iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _not_found(what: str, entity_id: str) -> Problem:
    return Problem(Error.NOT_FOUND, f"{what} {entity_id} not found", details={"id": entity_id})


_CONTACT = """SELECT workspace_id, id, name, email, phone, company, tags, fields, version,
    field_versions, created_at, updated_at, created_by, deleted_at FROM contacts"""
_LIVE_CONTACT = _CONTACT + " WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL"
_SESSION = """SELECT id, workspace_id, user_id, node, connected_at, disconnected_at,
    messages_in, messages_out, events_delivered, events_acked, close_code, extra
    FROM sessions"""
#: ``$2`` NULL means "every user"; the CAST lets PostgreSQL type a lone NULL.
_USER_FILTER = "(CAST($2 AS TEXT) IS NULL OR user_id = $2)"


class SqlStore:
    """:class:`~livespace.store.model.Store` over SQLite or PostgreSQL (see the contract
    there). Keeps no state of its own besides the :class:`Db`: several instances, in one
    process or many, may share a database.
    """

    def __init__(self, db: Db, *, ref_ttl_s: float = REF_TTL_S) -> None:
        self.db = db
        self.ref_ttl_s = ref_ttl_s

    async def migrate(self) -> list[str]:
        from livespace.store.migrate import migrate

        return await migrate(self.db)

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> bool:
        return bool(await self.db.fetchval("SELECT 1") == 1)

    # ---- workspaces and members ------------------------------------------------------------

    async def create_workspace(self, name: str, owner_id: str) -> Workspace:
        workspace_id, now = uuid.uuid4().hex, now_iso()
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)",
                workspace_id, name, now,
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
        workspace: not_found; a role outside :data:`~livespace.protocol.ROLES`:
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
                raise _not_found("workspace", workspace_id)
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

    async def members(self, workspace_id: str) -> list[Member]:
        rows = await self.db.fetchall(
            "SELECT workspace_id, user_id, role, added_at FROM members"
            " WHERE workspace_id = $1 ORDER BY added_at, user_id",
            workspace_id,
        )
        return [Member(r["workspace_id"], r["user_id"], r["role"], r["added_at"]) for r in rows]

    # ---- mutations ---------------------------------------------------------------------------

    async def apply(
        self, workspace_id: str, actor: Actor, mutation: Mutation, ref: str | None
    ) -> Committed:
        """Apply one mutation in one transaction (see the contract on ``Store``).

        The first statement takes the workspace's next seq and, on PostgreSQL, locks its
        row until commit: writers of one workspace run one after the other, so seqs have
        no gaps. A retried ``ref`` rolls that back and returns the first outcome.
        """
        try:
            async with self.db.transaction() as tx:
                seq = await tx.fetchval(
                    "UPDATE workspaces SET head_seq = head_seq + 1"
                    " WHERE id = $1 AND deleted_at IS NULL RETURNING head_seq",
                    workspace_id,
                )
                if seq is None:
                    raise _not_found("workspace", workspace_id)
                seq = int(seq)
                if ref is not None:
                    await self._check_ref(tx, workspace_id, actor.id, ref)
                now = now_iso()
                event_type, entity, data = await self._change(
                    tx, workspace_id, actor, mutation, now
                )
                event = Event(
                    workspace_id, seq, uuid.uuid4().hex, event_type,
                    Actor(actor.id, actor.name), now, data,
                )
                await tx.execute(
                    "INSERT INTO events (workspace_id, seq, event_id, type, actor_id,"
                    " actor_name, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    workspace_id, seq, event.event_id, event_type, actor.id, actor.name,
                    _json(data), now,
                )
                if ref is not None:
                    # an expired row of the same ref may still be there until cleanup
                    await tx.execute(
                        "INSERT INTO mutation_refs (workspace_id, user_id, ref, seq, entity,"
                        " created_at) VALUES ($1, $2, $3, $4, $5, $6)"
                        " ON CONFLICT (workspace_id, user_id, ref) DO UPDATE SET"
                        " seq = excluded.seq, entity = excluded.entity,"
                        " created_at = excluded.created_at",
                        workspace_id, actor.id, ref, seq, _json(entity), now,
                    )
        except _Retry as retry:
            return retry.committed
        return Committed(seq, entity, event)

    async def _check_ref(self, tx: Queries, workspace_id: str, user_id: str, ref: str) -> None:
        since = datetime.now(UTC) - timedelta(seconds=self.ref_ttl_s)
        row = await tx.fetchone(
            "SELECT seq, entity FROM mutation_refs WHERE workspace_id = $1 AND user_id = $2"
            " AND ref = $3 AND created_at >= $4",
            workspace_id, user_id, ref, _iso(since),
        )
        if row is not None:
            raise _Retry(Committed(int(row["seq"]), orjson.loads(row["entity"]), None))

    async def _change(
        self, tx: Queries, workspace_id: str, actor: Actor, mutation: Mutation, now: str
    ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """Make the change; return (event type, entity, event data)."""
        match mutation:
            case CreateContact():
                entity = await _create(tx, workspace_id, actor, mutation, now)
                return "contact_created", entity, entity
            case UpdateContact():
                entity = await _update(tx, workspace_id, mutation, now)
                return "contact_updated", entity, {**entity, "changed": list(mutation.changes)}
            case DeleteContact():
                entity = await _delete(tx, workspace_id, mutation, now)
                return "contact_deleted", entity, entity
            case AddNote():
                entity = await _add_note(tx, workspace_id, actor, mutation, now)
                return "note_added", entity, entity

    # ---- contacts and notes ------------------------------------------------------------------

    async def get_contact(
        self, workspace_id: str, contact_id: str, *, include_deleted: bool = False
    ) -> dict[str, Any] | None:
        row = await self.db.fetchone(
            _CONTACT + " WHERE workspace_id = $1 AND id = $2 AND ($3 OR deleted_at IS NULL)",
            workspace_id, contact_id, include_deleted,
        )
        return None if row is None else _contact(row)

    async def contacts(
        self, workspace_id: str, *, after: str | None, limit: int, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        """Contacts in id order, ids greater than ``after`` (keyset pagination)."""
        rows = await self.db.fetchall(
            _CONTACT + " WHERE workspace_id = $1 AND id > $2 AND ($3 OR deleted_at IS NULL)"
            " ORDER BY id LIMIT $4",
            workspace_id, after or "", include_deleted, limit,
        )
        return [_contact(r) for r in rows]

    async def notes(self, workspace_id: str, contact_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT workspace_id, id, contact_id, body, author_id, author_name, created_at"
            " FROM notes WHERE workspace_id = $1 AND contact_id = $2 ORDER BY created_at, id",
            workspace_id, contact_id,
        )
        return [_note(r) for r in rows]

    # ---- the log -----------------------------------------------------------------------------

    async def head_seq(self, workspace_id: str) -> int:
        seq = await self.db.fetchval("SELECT head_seq FROM workspaces WHERE id = $1", workspace_id)
        return 0 if seq is None else int(seq)

    async def oldest_seq(self, workspace_id: str) -> int:
        """The first seq still kept; head_seq + 1 when nothing is kept."""
        row = await self.db.fetchone(
            "SELECT w.head_seq, (SELECT min(e.seq) FROM events e WHERE e.workspace_id = w.id)"
            " AS oldest FROM workspaces w WHERE w.id = $1",
            workspace_id,
        )
        if row is None:
            return 1
        return int(row["head_seq"]) + 1 if row["oldest"] is None else int(row["oldest"])

    async def events_after(self, workspace_id: str, since: int, limit: int) -> list[Event]:
        rows = await self.db.fetchall(
            "SELECT workspace_id, seq, event_id, type, actor_id, actor_name, data, created_at"
            " FROM events WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            workspace_id, since, limit,
        )
        return [_event(r) for r in rows]

    async def delete_events_before(self, cutoff_iso: str) -> int:
        """Delete events older than the cutoff, a workspace's newest too (its head_seq
        stays, so :meth:`oldest_seq` still answers). Returns how many went."""
        return await self.db.execute(
            "DELETE FROM events WHERE created_at < $1", _cutoff(cutoff_iso)
        )

    async def delete_refs_before(self, cutoff_iso: str) -> int:
        return await self.db.execute(
            "DELETE FROM mutation_refs WHERE created_at < $1", _cutoff(cutoff_iso)
        )

    # ---- delivery receipts and sessions --------------------------------------------------------

    async def advance_cursor(self, workspace_id: str, user_id: str, seq: int) -> int:
        """Store max(stored, seq), seq clamped to [0, head_seq]; return what is stored."""
        async with self.db.transaction() as tx:
            head = await tx.fetchval("SELECT head_seq FROM workspaces WHERE id = $1", workspace_id)
            target = max(0, min(seq, int(head or 0)))
            stored = await tx.fetchval(
                "INSERT INTO delivery_cursors (workspace_id, user_id, seq, updated_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, user_id) DO UPDATE SET"
                " seq = CASE WHEN excluded.seq > delivery_cursors.seq THEN excluded.seq"
                " ELSE delivery_cursors.seq END, updated_at = excluded.updated_at"
                " RETURNING seq",
                workspace_id, user_id, target, now_iso(),
            )
        return int(stored)

    async def cursor(self, workspace_id: str, user_id: str) -> int:
        seq = await self.db.fetchval(
            "SELECT seq FROM delivery_cursors WHERE workspace_id = $1 AND user_id = $2",
            workspace_id, user_id,
        )
        return 0 if seq is None else int(seq)

    async def save_session(self, session: SessionRow) -> None:
        """Insert or overwrite the whole row of ``session.id``."""
        s = session
        await self.db.execute(
            "INSERT INTO sessions (id, workspace_id, user_id, node, connected_at,"
            " disconnected_at, messages_in, messages_out, events_delivered, events_acked,"
            " close_code, extra) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            " ON CONFLICT (id) DO UPDATE SET workspace_id = excluded.workspace_id,"
            " user_id = excluded.user_id, node = excluded.node,"
            " connected_at = excluded.connected_at, disconnected_at = excluded.disconnected_at,"
            " messages_in = excluded.messages_in, messages_out = excluded.messages_out,"
            " events_delivered = excluded.events_delivered,"
            " events_acked = excluded.events_acked, close_code = excluded.close_code,"
            " extra = excluded.extra",
            s.id, s.workspace_id, s.user_id, s.node, s.connected_at, s.disconnected_at,
            s.messages_in, s.messages_out, s.events_delivered, s.events_acked, s.close_code,
            _json(s.extra),
        )

    async def sessions(
        self, workspace_id: str, *, active: bool | None, user_id: str | None = None
    ) -> list[SessionRow]:
        """Newest first; ``active`` True: open only, False: closed only, None: both."""
        state = {None: 0, True: 1, False: 2}[active]
        rows = await self.db.fetchall(
            _SESSION + " WHERE workspace_id = $1 AND " + _USER_FILTER
            + " AND ($3 = 0 OR ($3 = 1 AND disconnected_at IS NULL)"
            " OR ($3 = 2 AND disconnected_at IS NOT NULL))"
            " ORDER BY connected_at DESC, id DESC LIMIT $4",
            workspace_id, user_id, state, SESSIONS_LIMIT,
        )
        return [_session(r) for r in rows]

    async def delete_sessions_before(self, cutoff_iso: str) -> int:
        """Delete closed sessions that ended before the cutoff; open ones stay."""
        return await self.db.execute(
            "DELETE FROM sessions WHERE disconnected_at IS NOT NULL AND disconnected_at < $1",
            _cutoff(cutoff_iso),
        )

    async def stats(self, workspace_id: str, *, user_id: str | None = None) -> dict[str, Any]:
        """Analytics of one workspace; with ``user_id`` the session figures (sessions,
        messages, delivery) are that user's. Event figures cover the retained log."""
        db = self.db
        by_type = await db.fetchall(
            "SELECT type, count(*) AS n FROM events WHERE workspace_id = $1"
            " GROUP BY type ORDER BY type",
            workspace_id,
        )
        by_day = await db.fetchall(
            "SELECT day, type, count FROM message_stats WHERE workspace_id = $1"
            " ORDER BY day, type",
            workspace_id,
        )
        users = await db.fetchall(
            "SELECT actor_id, count(*) AS n FROM events WHERE workspace_id = $1"
            " GROUP BY actor_id ORDER BY n DESC, actor_id LIMIT 10",
            workspace_id,
        )
        s = await db.fetchone(
            "SELECT count(*) AS total,"
            " sum(CASE WHEN disconnected_at IS NULL THEN 1 ELSE 0 END) AS active,"
            " sum(messages_in) AS m_in, sum(messages_out) AS m_out,"
            " sum(events_delivered) AS delivered, sum(events_acked) AS acked"
            " FROM sessions WHERE workspace_id = $1 AND " + _USER_FILTER,
            workspace_id, user_id,
        )
        avg = await db.fetchval(
            "SELECT avg(duration_s) FROM session_durations WHERE workspace_id = $1 AND "
            + _USER_FILTER,
            workspace_id, user_id,
        )
        assert s is not None  # an aggregate always has a row

        def n(value: Any) -> int:
            return 0 if value is None else int(value)

        delivered, acked = n(s["delivered"]), n(s["acked"])
        return {
            "events_by_type": {r["type"]: int(r["n"]) for r in by_type},
            "events_by_day": [
                {"day": r["day"], "type": r["type"], "count": int(r["count"])} for r in by_day
            ],
            "sessions": {
                "total": n(s["total"]),
                "active": n(s["active"]),
                "average_duration_s": None if avg is None else round(float(avg), 3),
            },
            "messages": {"in": n(s["m_in"]), "out": n(s["m_out"])},
            "most_active_users": [
                {"user_id": r["actor_id"], "events": int(r["n"])} for r in users
            ],
            "delivery": {
                "delivered": delivered,
                "acked": acked,
                "rate": acked / delivered if delivered else None,
            },
        }


# ---- the changes apply() makes, inside its transaction ------------------------------------


async def _create(
    tx: Queries, workspace_id: str, actor: Actor, m: CreateContact, now: str
) -> dict[str, Any]:
    contact: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "workspace_id": workspace_id,
        "name": m.name,
        "email": m.email,
        "phone": m.phone,
        "company": m.company,
        "tags": list(m.tags),
        "fields": dict(m.fields),
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "created_by": actor.id,
    }
    await _write_contact(tx, contact, {f: 1 for f in CONTACT_FIELDS}, insert=True)
    return contact


async def _update(
    tx: Queries, workspace_id: str, m: UpdateContact, now: str
) -> dict[str, Any]:
    """Merge ``m.changes``; a stale ``base_version`` conflicts only on fields changed since."""
    unknown = sorted(set(m.changes) - set(CONTACT_FIELDS))
    if unknown:
        raise Problem(
            Error.VALIDATION_FAILED, f"changes: unknown field {unknown[0]}",
            details={"field": f"changes.{unknown[0]}", "reason": "unknown field"},
        )
    row = await tx.fetchone(_LIVE_CONTACT, workspace_id, m.id)
    if row is None:
        raise _not_found("contact", m.id)
    current = _contact(row)
    field_versions: dict[str, int] = orjson.loads(row["field_versions"])
    if m.base_version is not None and m.base_version < current["version"]:
        stale = [f for f in m.changes if field_versions.get(f, 1) > m.base_version]
        if stale:
            raise Problem(
                Error.CONFLICT,
                f"contact {m.id} changed since version {m.base_version}: {', '.join(stale)}",
                details={"current": current, "fields": stale},
            )
    version = current["version"] + 1
    contact = {**current, **m.changes, "version": version, "updated_at": now}
    field_versions.update({f: version for f in m.changes})
    await _write_contact(tx, contact, field_versions, insert=False)
    return contact


async def _write_contact(
    tx: Queries, c: dict[str, Any], field_versions: dict[str, int], *, insert: bool
) -> None:
    if insert:
        sql = (
            "INSERT INTO contacts (workspace_id, id, name, email, phone, company, tags, fields,"
            " version, field_versions, updated_at, created_at, created_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )
        extra: tuple[Any, ...] = (c["created_at"], c["created_by"])
    else:
        sql = (
            "UPDATE contacts SET name = $3, email = $4, phone = $5, company = $6, tags = $7,"
            " fields = $8, version = $9, field_versions = $10, updated_at = $11"
            " WHERE workspace_id = $1 AND id = $2"
        )
        extra = ()
    await tx.execute(
        sql, c["workspace_id"], c["id"], c["name"], c["email"], c["phone"], c["company"],
        _json(c["tags"]), _json(c["fields"]), c["version"], _json(field_versions),
        c["updated_at"], *extra,
    )


async def _delete(tx: Queries, workspace_id: str, m: DeleteContact, now: str) -> dict[str, Any]:
    """Soft delete: the tombstone keeps its row with ``deleted_at`` and a new version."""
    row = await tx.fetchone(_LIVE_CONTACT, workspace_id, m.id)
    if row is None:
        raise _not_found("contact", m.id)
    version = int(row["version"]) + 1
    await tx.execute(
        "UPDATE contacts SET deleted_at = $3, updated_at = $3, version = $4"
        " WHERE workspace_id = $1 AND id = $2",
        workspace_id, m.id, now, version,
    )
    return {
        "id": m.id,
        "workspace_id": workspace_id,
        "version": version,
        "deleted_at": now,
        "deleted": True,
        "name": row["name"],
    }


async def _add_note(
    tx: Queries, workspace_id: str, actor: Actor, m: AddNote, now: str
) -> dict[str, Any]:
    if await tx.fetchval(
        "SELECT 1 FROM contacts WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
        workspace_id, m.contact_id,
    ) is None:
        raise _not_found("contact", m.contact_id)
    note_id = uuid.uuid4().hex
    await tx.execute(
        "INSERT INTO notes (workspace_id, id, contact_id, body, author_id, author_name,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        workspace_id, note_id, m.contact_id, m.body, actor.id, actor.name, now,
    )
    return {
        "id": note_id,
        "workspace_id": workspace_id,
        "contact_id": m.contact_id,
        "body": m.body,
        "author": {"id": actor.id, "name": actor.name},
        "created_at": now,
    }
