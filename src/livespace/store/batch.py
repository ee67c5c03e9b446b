"""The SQL of one committed batch: its two reads (refs, contacts) and its writes.

Per engine, the shape that costs least: on PostgreSQL every write of a batch is one
statement (data-modifying CTEs over typed arrays) and each read one primary-key probe
per key; on SQLite (in-process, no round trips) multi-row statements in power-of-two
sizes, so that few distinct statements get prepared.
"""

from __future__ import annotations

import functools
import random
import secrets
import time
from typing import Any, TypeVar

import orjson

from livespace.commands import CONTACT_EVENTS
from livespace.store.db import Queries
from livespace.store.domain import Contact, Plan, RefKey, Request
from livespace.store.model import Committed
from livespace.store.notes import write_note_bodies
from livespace.store.rows import CONTACT_SELECT, contact_of, json_text

_T = TypeVar("_T")


class Ids:
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


new_id = Ids()


def _padded(values: list[_T]) -> list[_T]:
    """``values`` with its last one repeated up to a power of two in length: ``IN``
    lists then come in few lengths, and so do the prepared statements cached for them."""
    size = 1 << (len(values) - 1).bit_length()
    return values + values[-1:] * (size - len(values))


def _placeholders(first: int, count: int) -> str:
    return ", ".join(f"${n}" for n in range(first, first + count))


_CONTACT_COLUMNS = (
    "workspace_id, id, name, email, phone, company, tags, fields, version, field_versions,"
    " updated_at, deleted_at, seq"
)
_INSERT_CONTACT = "INSERT INTO contacts (" + _CONTACT_COLUMNS + ", created_at, created_by)"
_UPDATE_CONTACT = (
    "UPDATE contacts SET name = $3, email = $4, phone = $5, company = $6, tags = $7,"
    " fields = $8, version = $9, field_versions = $10, updated_at = $11, deleted_at = $12,"
    " seq = $13 WHERE workspace_id = $1 AND id = $2"
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


#: Column types of the rows written in bulk (PostgreSQL reads them from typed arrays).
_CONTACT_TYPES = ("text",) * 8 + ("integer", "text", "text", "text", "bigint")
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
                " deleted_at = u.deleted_at, seq = u.seq"
                " FROM " + rows + " AS u(" + _CONTACT_COLUMNS + ")"
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
    "SELECT c.* FROM unnest($2::text[]) AS k(id) CROSS JOIN LATERAL (" + CONTACT_SELECT
    + ' WHERE workspace_id = $1 AND id = k.id COLLATE "C" AND deleted_at IS NULL LIMIT 1) AS c'
)


@functools.lru_cache(maxsize=64)
def _contacts_sql(count: int) -> str:
    """SQLite: the live contacts of ``$1`` among ``count`` ids."""
    return (CONTACT_SELECT + " WHERE workspace_id = $1 AND deleted_at IS NULL AND id IN ("
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


async def known_refs(
    tx: Queries, workspace_id: str, requests: list[Request], since: str, *, postgres: bool
) -> dict[RefKey, Committed]:
    """The outcomes of the batch's refs applied since ``since`` (one query)."""
    keys = list({(r.actor.id, r.ref): None for r in requests if r.ref is not None})
    if not keys:
        return {}
    if postgres:
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


async def live_contacts(
    tx: Queries, workspace_id: str, ids: list[str], *, postgres: bool
) -> dict[str, Contact]:
    """The live contacts among ``ids`` (one query)."""
    if not ids:
        return {}
    if postgres:
        rows = await tx.fetchall(_PG_CONTACTS, workspace_id, ids)
    else:
        ids = _padded(ids)
        rows = await tx.fetchall(_contacts_sql(len(ids)), workspace_id, *ids)
    return {r["id"]: Contact(contact_of(r), orjson.loads(r["field_versions"])) for r in rows}


async def write_plan(tx: Queries, workspace_id: str, plan: Plan, *, postgres: bool) -> None:
    """Write the batch: on PostgreSQL in one statement, on SQLite (in-process, no
    round trips) a multi-row statement or two per table."""
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    # each contact's latest event, for compacted replay (store/compaction.py)
    latest = {e.data["id"]: e.seq for e in plan.events if e.type in CONTACT_EVENTS}
    for c in plan.contacts.values():
        e = c.entity
        row = (workspace_id, e["id"], e["name"], e["email"], e["phone"], e["company"],
               json_text(e["tags"]), json_text(e["fields"]), e["version"],
               json_text(c.field_versions), e["updated_at"], c.deleted_at, latest[e["id"]])
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
                    json_text(e.data), e.ts) for e in plan.events],
        "refs": [(workspace_id, user_id, ref, seq, json_text(entity), now)
                 for user_id, ref, seq, entity in plan.refs],
    }
    parts = tuple(part for part, rows in writes.items() if rows)
    await write_note_bodies(tx, workspace_id, list(plan.note_bodies.values()))
    if postgres:
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
