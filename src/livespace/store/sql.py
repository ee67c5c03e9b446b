"""The one implementation of :class:`~livespace.store.model.Store`, over any :class:`Db`.

All domain SQL lives here, written once with ``$1, $2`` placeholders and portable
between SQLite (3.35+) and PostgreSQL; the engine modules (:mod:`.sqlite`,
:mod:`.postgres`) only run it. The few expressions that differ between engines live
in views of the per-dialect migrations (``session_durations``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import secrets
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import orjson

from livespace.codes import Error, Problem
from livespace.protocol import ROLES, Mutation, now_iso
from livespace.store.domain import Contact, Plan, RefKey, Request, referenced_contacts
from livespace.store.domain import not_found as _not_found
from livespace.store.domain import plan as domain_plan
from livespace.store.model import Actor, Committed, Event, Member, SessionRow, Workspace

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: How long a mutation ``ref`` is remembered for idempotent retries (DESIGN.md section 1).
REF_TTL_S = 24 * 3600
#: At most this many rows from :meth:`SqlStore.sessions`.
SESSIONS_LIMIT = 1000
#: At most this many mutations of a workspace share one transaction.
BATCH_MAX = 256


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

    def transaction(self) -> AbstractAsyncContextManager[Queries]:
        """Commit on normal exit, roll back when the block raises.

        Writers are serialised at least per workspace by the first statement of
        :meth:`SqlStore.apply` (the workspace row lock), on SQLite globally.
        """

    async def close(self) -> None: ...


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


class _Ids:
    """New ids: 32 hex digits, milliseconds since the epoch then 80 random bits (as a
    UUIDv7 orders), strictly increasing within this process - so rows made in one batch,
    which share ``created_at``, still list in the order they were made."""

    def __init__(self) -> None:
        self._last = 0
        self._random = random.Random(secrets.randbits(128))  # no syscall per id

    def __call__(self) -> str:
        fresh = (time.time_ns() // 1_000_000) << 80 | self._random.getrandbits(80)
        self._last = fresh if fresh > self._last else self._last + 1
        return f"{self._last:032x}"


_new_id = _Ids()


def _padded(values: list[_T]) -> list[_T]:
    """``values`` with its last one repeated up to a power of two in length: ``IN``
    lists then come in few lengths, and so do the prepared statements cached for them."""
    size = 1 << (len(values) - 1).bit_length()
    return values + values[-1:] * (size - len(values))


def _placeholders(first: int, count: int) -> str:
    return ", ".join(f"${n}" for n in range(first, first + count))


_CONTACT = """SELECT workspace_id, id, name, email, phone, company, tags, fields, version,
    field_versions, created_at, updated_at, created_by, deleted_at FROM contacts"""
_CONTACT_COLUMNS = (
    "workspace_id, id, name, email, phone, company, tags, fields, version, field_versions,"
    " updated_at, deleted_at"
)
_INSERT_CONTACT = "INSERT INTO contacts (" + _CONTACT_COLUMNS + ", created_at, created_by)"
_UPDATE_CONTACT = (
    "UPDATE contacts SET name = $3, email = $4, phone = $5, company = $6, tags = $7,"
    " fields = $8, version = $9, field_versions = $10, updated_at = $11, deleted_at = $12"
    " WHERE workspace_id = $1 AND id = $2"
)
_INSERT_NOTE = (
    "INSERT INTO notes (workspace_id, id, contact_id, body, author_id, author_name,"
    " created_at)"
)
_INSERT_EVENT = (
    "INSERT INTO events (workspace_id, seq, event_id, type, actor_id, actor_name, data,"
    " created_at)"
)
_INSERT_REF = "INSERT INTO mutation_refs (workspace_id, user_id, ref, seq, entity, created_at)"
#: An expired row of the same ref may still be there until cleanup: overwritten.
_REF_CONFLICT = (
    " ON CONFLICT (workspace_id, user_id, ref) DO UPDATE SET seq = excluded.seq,"
    " entity = excluded.entity, created_at = excluded.created_at"
)
_HEAD = "SELECT head_seq FROM workspaces WHERE id = $1 AND deleted_at IS NULL"
_SESSION = """SELECT id, workspace_id, user_id, node, connected_at, disconnected_at,
    messages_in, messages_out, events_delivered, events_acked, close_code, extra
    FROM sessions"""
#: ``$2`` NULL means "every user"; the CAST lets PostgreSQL type a lone NULL.
_USER_FILTER = "(CAST($2 AS TEXT) IS NULL OR user_id = $2)"


#: Column types of the rows written in bulk (PostgreSQL reads them from typed arrays).
_CONTACT_TYPES = ("text",) * 8 + ("integer", "text", "text", "text")
_INSERT_CONTACT_TYPES = (*_CONTACT_TYPES, "text", "text")
_NOTE_TYPES = ("text",) * 7
_EVENT_TYPES = ("text", "bigint", *("text",) * 6)
_REF_TYPES = ("text", "text", "text", "bigint", "text", "text")
_INSERTS = {"contacts": _INSERT_CONTACT, "notes": _INSERT_NOTE, "events": _INSERT_EVENT,
            "refs": _INSERT_REF}
_TYPES = {"contacts": _INSERT_CONTACT_TYPES, "updates": _CONTACT_TYPES, "notes": _NOTE_TYPES,
          "events": _EVENT_TYPES, "refs": _REF_TYPES}


def _unnest(types: tuple[str, ...], first: int) -> str:
    return "unnest(" + ", ".join(f"${n}::{t}[]" for n, t in enumerate(types, first)) + ")"


@functools.lru_cache(maxsize=32)
def _pg_writes_sql(parts: tuple[str, ...]) -> str:
    """PostgreSQL: all of a batch's writes as ONE statement (one round trip): a
    data-modifying CTE per part (``contacts`` inserted, ``updates`` of contacts, ``notes``,
    ``events``, ``refs``; each from typed arrays, one per column), then the head."""
    ctes: list[str] = []
    first = 1
    for part in parts:
        rows = _unnest(_TYPES[part], first)
        first += len(_TYPES[part])
        if part == "updates":
            body = (
                "UPDATE contacts AS c SET name = u.name, email = u.email, phone = u.phone,"
                " company = u.company, tags = u.tags, fields = u.fields, version = u.version,"
                " field_versions = u.field_versions, updated_at = u.updated_at,"
                " deleted_at = u.deleted_at FROM " + rows + " AS u(" + _CONTACT_COLUMNS + ")"
                ' WHERE c.workspace_id = u.workspace_id AND c.id = u.id COLLATE "C"'
            )
        else:
            body = (_INSERTS[part] + " SELECT * FROM " + rows
                    + (_REF_CONFLICT if part == "refs" else ""))
        ctes.append(f"write_{part} AS ({body})")
    return ("WITH " + ", ".join(ctes) + f" UPDATE workspaces SET head_seq = ${first + 1}"
            f" WHERE id = ${first}")


@functools.lru_cache(maxsize=128)
def _values_sql(insert: str, width: int, count: int, suffix: str) -> str:
    """``insert`` with ``count`` rows of ``width`` placeholders, then ``suffix``."""
    rows = ", ".join("(" + _placeholders(1 + n * width, width) + ")" for n in range(count))
    return insert + " VALUES " + rows + suffix


def _columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


async def _insert_values(tx: Queries, insert: str, width: int, rows: list[tuple[Any, ...]],
                         suffix: str) -> None:
    """Multi-row VALUES in power-of-two chunks: one execution each (executemany is one
    per row) and few distinct statements to prepare."""
    while rows:
        size = 1 << (len(rows).bit_length() - 1)
        chunk, rows = rows[:size], rows[size:]
        await tx.execute(_values_sql(insert, width, size, suffix),
                         *(value for row in chunk for value in row))


# PostgreSQL: one primary-key probe per key (LATERAL ... LIMIT 1 keeps the planner from
# turning it into a join): without statistics (a new database, before autovacuum's first
# ANALYZE) an IN list or a join scans every row of the workspace (10+ ms at 20,000).
_PG_REFS = (
    "SELECT k.user_id, k.ref, m.seq, m.entity FROM unnest($3::text[], $4::text[])"
    " AS k(user_id, ref) CROSS JOIN LATERAL (SELECT seq, entity FROM mutation_refs"
    " WHERE workspace_id = $1 AND user_id = k.user_id AND ref = k.ref AND created_at >= $2"
    " LIMIT 1) AS m"
)
_PG_CONTACTS = (
    "SELECT c.* FROM unnest($2::text[]) AS k(id) CROSS JOIN LATERAL (" + _CONTACT
    + ' WHERE workspace_id = $1 AND id = k.id COLLATE "C" AND deleted_at IS NULL LIMIT 1) AS c'
)


@functools.lru_cache(maxsize=64)
def _contacts_sql(count: int) -> str:
    """SQLite: the live contacts of ``$1`` among ``count`` ids."""
    return (_CONTACT + " WHERE workspace_id = $1 AND deleted_at IS NULL AND id IN ("
            + _placeholders(2, count) + ")")


@functools.lru_cache(maxsize=64)
def _refs_sql(count: int) -> str:
    """SQLite: the refs of ``$1`` applied since ``$2`` among ``count`` (user id, ref)
    pairs. A join from the pairs (CROSS JOIN: SQLite keeps them the outer loop) is one
    primary key lookup per pair; ``(user_id, ref) IN (VALUES ...)`` would scan the
    workspace's refs."""
    pairs = ", ".join(f"(${n}, ${n + 1})" for n in range(3, 3 + 2 * count, 2))
    return ("SELECT m.user_id, m.ref, m.seq, m.entity FROM (SELECT column1 AS user_id,"
            " column2 AS ref FROM (VALUES " + pairs + ") AS v) AS k CROSS JOIN mutation_refs m"
            " WHERE m.workspace_id = $1 AND m.user_id = k.user_id AND m.ref = k.ref"
            " AND m.created_at >= $2")


class SqlStore:
    """:class:`~livespace.store.model.Store` over SQLite or PostgreSQL (see the contract
    there). Keeps no durable state of its own besides the :class:`Db` (only the queues
    of mutations waiting for their workspace's committer): several instances, in one
    process or many, may share a database.

    Group commit: :meth:`apply` and :meth:`submit` queue a mutation for its workspace;
    one committer task per busy workspace takes up to :attr:`batch_max` of them, FIFO,
    into one transaction (the workspace row locked once, refs and contacts read with
    one query each, :func:`livespace.store.domain.plan` in Python, one write per table,
    one commit), hands the events to :attr:`on_commit`, then answers the callers. Alone,
    a mutation is a batch of one; under load the next batch gathers while one commits.
    """

    def __init__(
        self, db: Db, *, ref_ttl_s: float = REF_TTL_S, batch_max: int = BATCH_MAX
    ) -> None:
        self.db = db
        self.ref_ttl_s = ref_ttl_s
        self.batch_max = batch_max
        #: Awaited after each commit with its events in seq order, before the callers of
        #: the batch get their results (see ``Store.on_commit``).
        self.on_commit: Callable[[list[Event]], Awaitable[None]] | None = None
        # the first statement of a batch: PostgreSQL locks the row until commit; SQLite's
        # BEGIN IMMEDIATE has already locked the whole database
        self._postgres = db.dialect == "postgres"
        self._lock_head = _HEAD + (" FOR UPDATE" if self._postgres else "")
        self._queues: dict[str, deque[tuple[Request, asyncio.Future[Committed]]]] = {}
        self._committers: set[asyncio.Task[None]] = set()

    async def migrate(self) -> list[str]:
        from livespace.store.migrate import migrate

        return await migrate(self.db)

    async def close(self) -> None:
        """Commit what is queued, then close the database."""
        while self._committers:
            await asyncio.gather(*self._committers, return_exceptions=True)
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

    def submit(
        self, workspace_id: str, actor: Actor, mutation: Mutation, ref: str | None
    ) -> asyncio.Future[Committed]:
        """Queue a mutation for the workspace's committer; the future gets its
        :class:`Committed` or its :class:`Problem` (see :meth:`apply`).

        Not a coroutine: a caller that pipelines (a socket session) queues mutations in
        the order it received them without a task each, so they get seqs in that order.
        """
        future: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(workspace_id)
        if queue is None:
            queue = self._queues[workspace_id] = deque()
            task = asyncio.get_running_loop().create_task(self._commit_all(workspace_id, queue))
            self._committers.add(task)
            task.add_done_callback(self._committers.discard)
        queue.append((Request(actor, mutation, ref), future))
        return future

    async def apply(
        self, workspace_id: str, actor: Actor, mutation: Mutation, ref: str | None
    ) -> Committed:
        """Apply one mutation (see the contract on ``Store``), committed in a batch with
        the mutations of the workspace queued meanwhile."""
        return await self.submit(workspace_id, actor, mutation, ref)

    async def _commit_all(
        self, workspace_id: str, queue: deque[tuple[Request, asyncio.Future[Committed]]]
    ) -> None:
        """The workspace's committer: batches of up to :attr:`batch_max` queued
        mutations, FIFO, one transaction each, until the queue is empty."""
        try:
            while queue:
                batch: list[tuple[Request, asyncio.Future[Committed]]] = []
                while queue and len(batch) < self.batch_max:
                    item = queue.popleft()
                    if not item[1].cancelled():  # its caller is gone: not applied
                        batch.append(item)
                if batch:
                    await self._commit_batch(workspace_id, batch)
        finally:
            del self._queues[workspace_id]
            for _, future in queue:  # only when cancelled (the store is closing)
                future.cancel()

    async def _commit_batch(
        self, workspace_id: str, batch: list[tuple[Request, asyncio.Future[Committed]]]
    ) -> None:
        """Commit one batch, publish its events (:attr:`on_commit`), then answer each
        caller in FIFO order. An unexpected error fails every caller of the batch."""
        try:
            plan = await self._write_batch(workspace_id, [request for request, _ in batch])
        except BaseException as err:
            for _, future in batch:
                if future.done():
                    continue
                if isinstance(err, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(err)
            if not isinstance(err, Exception):
                raise
            log.error("a batch of %d mutations of workspace %s failed", len(batch),
                      workspace_id, exc_info=err)
            return
        try:
            if plan.events and self.on_commit is not None:
                try:
                    await self.on_commit(plan.events)
                except Exception:  # committed all the same: readers catch up from the store
                    log.exception("on_commit failed for seqs %d..%d of workspace %s",
                                  plan.events[0].seq, plan.events[-1].seq, workspace_id)
        finally:  # committed: answered even when cancelled meanwhile
            for (_, future), result in zip(batch, plan.results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Problem):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _write_batch(self, workspace_id: str, requests: list[Request]) -> Plan:
        """One transaction: lock the workspace row, read the refs and contacts the batch
        needs (one query each), plan in Python, write with one statement per table."""
        async with self.db.transaction() as tx:
            head = await tx.fetchval(self._lock_head, workspace_id)
            if head is None:
                missing = Plan(0)
                missing.results = [_not_found("workspace", workspace_id) for _ in requests]
                return missing
            known = await self._known_refs(tx, workspace_id, requests)
            contacts = await self._live_contacts(tx, workspace_id, referenced_contacts(requests))
            plan = domain_plan(workspace_id, int(head), requests, contacts, known, now_iso(),
                               _new_id)
            if plan.events:
                await self._write_plan(tx, workspace_id, plan)
        return plan

    async def _known_refs(
        self, tx: Queries, workspace_id: str, requests: list[Request]
    ) -> dict[RefKey, Committed]:
        keys = list({(r.actor.id, r.ref): None for r in requests if r.ref is not None})
        if not keys:
            return {}
        since = _iso(datetime.now(UTC) - timedelta(seconds=self.ref_ttl_s))
        if self._postgres:
            users, refs = _columns(keys)
            rows = await tx.fetchall(_PG_REFS, workspace_id, since, users, refs)
        else:
            keys = _padded(keys)
            rows = await tx.fetchall(
                _refs_sql(len(keys)), workspace_id, since, *(v for key in keys for v in key)
            )
        return {
            (r["user_id"], r["ref"]): Committed(int(r["seq"]), orjson.loads(r["entity"]), None)
            for r in rows
        }

    async def _live_contacts(
        self, tx: Queries, workspace_id: str, ids: list[str]
    ) -> dict[str, Contact]:
        if not ids:
            return {}
        if self._postgres:
            rows = await tx.fetchall(_PG_CONTACTS, workspace_id, ids)
        else:
            ids = _padded(ids)
            rows = await tx.fetchall(_contacts_sql(len(ids)), workspace_id, *ids)
        return {r["id"]: Contact(_contact(r), orjson.loads(r["field_versions"])) for r in rows}

    async def _write_plan(self, tx: Queries, workspace_id: str, plan: Plan) -> None:
        """Write the batch: on PostgreSQL in one statement, on SQLite (in-process, no
        round trips) a multi-row statement or two per table."""
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for c in plan.contacts.values():
            e = c.entity
            row = (workspace_id, e["id"], e["name"], e["email"], e["phone"], e["company"],
                   _json(e["tags"]), _json(e["fields"]), e["version"],
                   _json(c.field_versions), e["updated_at"], c.deleted_at)
            if c.stored:
                updates.append(row)
            else:
                inserts.append((*row, e["created_at"], e["created_by"]))
        now = plan.events[-1].ts
        writes = {  # in this order: a note's contact is written before it
            "contacts": inserts,
            "updates": updates,
            "notes": [(workspace_id, n["id"], n["contact_id"], n["body"], n["author"]["id"],
                       n["author"]["name"], n["created_at"]) for n in plan.notes],
            "events": [(workspace_id, e.seq, e.event_id, e.type, e.actor.id, e.actor.name,
                        _json(e.data), e.ts) for e in plan.events],
            "refs": [(workspace_id, user_id, ref, seq, _json(entity), now)
                     for user_id, ref, seq, entity in plan.refs],
        }
        parts = tuple(part for part, rows in writes.items() if rows)
        if self._postgres:
            columns = [column for part in parts for column in _columns(writes[part])]
            await tx.execute(_pg_writes_sql(parts), *columns, workspace_id, plan.head)
            return
        for part in parts:
            if part == "updates":
                await tx.executemany(_UPDATE_CONTACT, updates)
            else:
                await _insert_values(tx, _INSERTS[part], len(_TYPES[part]), writes[part],
                                     _REF_CONFLICT if part == "refs" else "")
        await tx.execute("UPDATE workspaces SET head_seq = $2 WHERE id = $1",
                         workspace_id, plan.head)

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
