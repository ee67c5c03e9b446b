"""The Store contract (livespace.store.model.Store), run on SQLite and on PostgreSQL.

Every test gets a fresh database from the ``database_url`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from livespace.codes import Error, Problem
from livespace.commands import AddNote, CreateContact, DeleteContact, UpdateContact
from livespace.store import Actor, SessionRow, Store, open_store
from livespace.store.migrate import available
from livespace.times import now_iso

pytestmark = pytest.mark.integration

ALICE = Actor("alice", "Alice")
BOB = Actor("bob", "Bob")
FUTURE = "9999-12-31T00:00:00.000Z"
CONTACT_KEYS = {
    "id", "workspace_id", "name", "email", "phone", "company", "tags", "fields",
    "version", "created_at", "updated_at", "created_by",
}


async def _ws(store: Store, owner: str = "alice") -> str:
    return (await store.create_workspace("Acme", owner)).id


async def _contact(store: Store, ws: str, name: str = "Ada", **kw: Any) -> dict[str, Any]:
    return (await store.apply(ws, ALICE, CreateContact(name, **kw), None)).entity


async def _problem(code: Error, coro: Any) -> Problem:
    with pytest.raises(Problem) as info:
        await coro
    assert info.value.code == code, info.value
    return info.value


# ---- migrations -----------------------------------------------------------------------------


async def test_migrations_apply_in_name_order_once(database_url: str) -> None:
    fresh = await open_store(database_url)
    try:
        applied = await fresh.migrate()
        assert applied[0] == "0001_init" and applied == sorted(applied)
        assert await fresh.migrate() == []
    finally:
        await fresh.close()


async def test_migrate_twice_is_a_no_op(store: Store) -> None:
    assert await store.migrate() == []
    assert await store.ping() is True


async def test_concurrent_migrate_from_two_processes(database_url: str) -> None:
    stores = [await open_store(database_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(s.migrate() for s in stores))
        dialect = stores[0].db.dialect  # type: ignore[attr-defined]
        everything = [version for version, _ in available(dialect)]
        assert sorted(results) == [[], [], everything]
        assert await stores[0].migrate() == []
    finally:
        for s in stores:
            await s.close()


# ---- workspaces and members -----------------------------------------------------------------


async def test_workspaces_and_members(store: Store) -> None:
    ws = await store.create_workspace("Acme", "alice")
    assert ws.role == "owner" and ws.head_seq == 0 and len(ws.id) == 32
    got = await store.get_workspace(ws.id)
    assert got is not None and (got.name, got.created_at, got.role) == ("Acme", ws.created_at, None)
    assert await store.get_workspace("nope") is None

    bob = await store.set_member(ws.id, "bob", "viewer")
    again = await store.set_member(ws.id, "bob", "member")
    assert (again.role, again.added_at) == ("member", bob.added_at)
    assert await store.role_of(ws.id, "bob") == "member"
    assert await store.role_of(ws.id, "carol") is None
    assert await store.role_of("nope", "alice") is None
    assert [(m.user_id, m.role) for m in await store.members(ws.id)] == [
        ("alice", "owner"), ("bob", "member"),
    ]
    other = await store.create_workspace("Other", "bob")
    assert [(w.id, w.role) for w in await store.workspaces_of("bob")] == [
        (ws.id, "member"), (other.id, "owner"),
    ]
    await _problem(Error.VALIDATION_FAILED, store.set_member(ws.id, "bob", "king"))
    await _problem(Error.NOT_FOUND, store.set_member("nope", "bob", "member"))

    assert await store.remove_member(ws.id, "bob") is True
    assert await store.remove_member(ws.id, "bob") is False
    assert await store.role_of(ws.id, "bob") is None

    assert await store.delete_workspace(ws.id) is True
    assert await store.delete_workspace(ws.id) is False
    assert await store.get_workspace(ws.id) is None
    assert await store.role_of(ws.id, "alice") is None
    assert await store.workspaces_of("alice") == []
    await _problem(Error.NOT_FOUND, store.apply(ws.id, ALICE, CreateContact("x"), None))
    await _problem(Error.NOT_FOUND, store.set_member(ws.id, "bob", "member"))


# ---- seq: no gaps, no duplicates, under concurrent writers ----------------------------------


async def test_concurrent_writers_get_seqs_without_gaps(database_url: str) -> None:
    """8 writers x 50 creates, spread over 4 stores (4 pools / connections, as 4
    processes would have): seqs are exactly 1..400."""
    stores = [await open_store(database_url) for _ in range(4)]
    try:
        await stores[0].migrate()
        ws = await _ws(stores[0])

        async def writer(n: int) -> list[int]:
            s = stores[n % len(stores)]
            actor = Actor(f"user{n}")
            return [
                (await s.apply(ws, actor, CreateContact(f"c{n}-{i}"), f"r{i}")).seq
                for i in range(50)
            ]

        per_writer = await asyncio.gather(*(writer(n) for n in range(8)))
        for seqs in per_writer:
            assert seqs == sorted(seqs)  # one writer's mutations are ordered
        assert sorted(s for seqs in per_writer for s in seqs) == list(range(1, 401))
        events = await stores[1].events_after(ws, 0, 1000)
        assert [e.seq for e in events] == list(range(1, 401))
        assert len({e.event_id for e in events}) == 400
        assert await stores[2].head_seq(ws) == 400
        assert len(await stores[3].contacts(ws, after=None, limit=1000)) == 400
    finally:
        for s in stores:
            await s.close()


# ---- idempotency ----------------------------------------------------------------------------


async def test_retry_with_same_ref_is_applied_once(store: Store) -> None:
    ws = await _ws(store)
    first = await store.apply(ws, ALICE, CreateContact("Ada"), "ref-1")
    assert first.seq == 1 and first.event is not None
    assert first.event.data == first.entity

    retry = await store.apply(ws, ALICE, CreateContact("Ada"), "ref-1")
    assert (retry.seq, retry.entity, retry.event) == (1, first.entity, None)
    assert await store.head_seq(ws) == 1
    assert len(await store.events_after(ws, 0, 10)) == 1

    # the same ref from another user is another mutation
    bobs = await store.apply(ws, BOB, CreateContact("Ada"), "ref-1")
    assert bobs.seq == 2 and bobs.event is not None

    # a retry consumed no seq: the next mutation follows on
    nxt = await store.apply(ws, ALICE, CreateContact("Eve"), None)
    assert nxt.seq == 3


async def test_retry_is_recognised_after_a_restart(database_url: str) -> None:
    store = await open_store(database_url)
    try:
        await store.migrate()
        ws = await _ws(store)
        first = await store.apply(ws, ALICE, AddNote((await _contact(store, ws))["id"], "x"), "r")
    finally:
        await store.close()
    reopened = await open_store(database_url)
    try:
        again = await reopened.apply(ws, ALICE, DeleteContact("whatever"), "r")
        assert (again.seq, again.entity, again.event) == (2, first.entity, None)
        assert await reopened.head_seq(ws) == 2
    finally:
        await reopened.close()


async def test_failed_mutation_leaves_nothing(store: Store) -> None:
    ws = await _ws(store)
    await _problem(Error.NOT_FOUND, store.apply(ws, ALICE, DeleteContact("missing"), "r"))
    assert await store.head_seq(ws) == 0
    assert await store.events_after(ws, 0, 10) == []
    # the ref was not used up by the failure
    ok = await store.apply(ws, ALICE, CreateContact("Ada"), "r")
    assert ok.seq == 1 and ok.event is not None


async def test_expired_refs_are_forgotten(store: Store) -> None:
    ws = await _ws(store)
    first = await store.apply(ws, ALICE, CreateContact("Ada"), "r")
    assert await store.delete_refs_before(FUTURE) == 1
    second = await store.apply(ws, ALICE, CreateContact("Ada"), "r")
    assert second.seq == first.seq + 1 and second.event is not None
    third = await store.apply(ws, ALICE, CreateContact("Ada"), "r")
    assert (third.seq, third.event) == (second.seq, None)


# ---- contacts and notes ---------------------------------------------------------------------


async def test_create_contact_entity(store: Store) -> None:
    ws = await _ws(store)
    c = await store.apply(
        ws, ALICE,
        CreateContact("Ada", email="ada@x.org", tags=("vip",), fields={"tier": 2}), None,
    )
    assert set(c.entity) == CONTACT_KEYS
    assert c.entity["version"] == 1 and c.entity["created_by"] == "alice"
    assert c.entity["tags"] == ["vip"] and c.entity["fields"] == {"tier": 2}
    assert c.event is not None and c.event.type == "contact_created"
    assert c.event.actor == ALICE and c.event.ts == c.entity["created_at"]
    assert await store.get_contact(ws, c.entity["id"]) == c.entity
    [event] = await store.events_after(ws, 0, 10)
    assert event == c.event


async def test_update_merges_or_conflicts_on_base_version(store: Store) -> None:
    ws = await _ws(store)
    cid = (await _contact(store, ws, email="a@x.org"))["id"]

    v2 = await store.apply(ws, ALICE, UpdateContact(cid, {"name": "Ada L"}, 1), None)
    assert v2.entity["version"] == 2 and v2.entity["name"] == "Ada L"
    assert v2.event is not None and v2.event.type == "contact_updated"
    assert v2.event.data == {**v2.entity, "changed": ["name"]}

    # stale base, but email has not changed since version 1: merged
    v3 = await store.apply(ws, BOB, UpdateContact(cid, {"email": "ada@x.org"}, 1), None)
    assert (v3.entity["version"], v3.entity["name"], v3.entity["email"]) == (
        3, "Ada L", "ada@x.org",
    )
    head = await store.head_seq(ws)

    # stale base on a field changed since: conflict with the current contact
    problem = await _problem(
        Error.CONFLICT,
        store.apply(ws, BOB, UpdateContact(cid, {"name": "X", "phone": "1"}, 1), None),
    )
    assert isinstance(problem.details, dict)
    assert problem.details["fields"] == ["name"]
    assert problem.details["current"] == v3.entity
    assert await store.head_seq(ws) == head

    # no base_version: last writer wins; fields replaces the whole dict
    v4 = await store.apply(ws, BOB, UpdateContact(cid, {"name": "X", "fields": {"a": 1}}), None)
    assert v4.entity["version"] == 4 and v4.entity["fields"] == {"a": 1}
    v5 = await store.apply(ws, BOB, UpdateContact(cid, {"fields": {"b": True}}, 4), None)
    assert v5.entity["fields"] == {"b": True}
    assert await store.get_contact(ws, cid) == v5.entity
    await _problem(
        Error.VALIDATION_FAILED, store.apply(ws, BOB, UpdateContact(cid, {"id": "x"}), None)
    )


async def test_contacts_of_another_workspace_are_not_found(store: Store) -> None:
    ws_a, ws_b = await _ws(store), await _ws(store, "bob")
    cid = (await _contact(store, ws_a))["id"]
    await _problem(Error.NOT_FOUND, store.apply(ws_b, BOB, UpdateContact(cid, {"name": "x"}), None))
    await _problem(Error.NOT_FOUND, store.apply(ws_b, BOB, DeleteContact(cid), None))
    problem = await _problem(Error.NOT_FOUND, store.apply(ws_b, BOB, AddNote(cid, "hi"), None))
    assert problem.details == {"id": cid}
    assert await store.get_contact(ws_b, cid) is None
    assert await store.get_contact(ws_b, cid, include_deleted=True) is None
    assert await store.head_seq(ws_b) == 0
    assert await store.contacts(ws_b, after=None, limit=10) == []


async def test_delete_leaves_a_tombstone(store: Store) -> None:
    ws = await _ws(store)
    contact = await _contact(store, ws)
    cid = contact["id"]
    gone = await store.apply(ws, ALICE, DeleteContact(cid), None)
    assert gone.entity == {
        "id": cid, "workspace_id": ws, "version": 2, "deleted_at": gone.entity["deleted_at"],
        "deleted": True, "name": "Ada",
    }
    assert gone.event is not None and gone.event.type == "contact_deleted"
    assert gone.event.data == gone.entity
    assert await store.get_contact(ws, cid) is None
    tomb = await store.get_contact(ws, cid, include_deleted=True)
    assert tomb is not None and tomb["deleted"] is True and tomb["version"] == 2
    assert await store.contacts(ws, after=None, limit=10) == []
    assert [c["id"] for c in await store.contacts(ws, after=None, limit=10,
                                                   include_deleted=True)] == [cid]
    for mutation in (DeleteContact(cid), UpdateContact(cid, {"name": "x"}), AddNote(cid, "x")):
        await _problem(Error.NOT_FOUND, store.apply(ws, ALICE, mutation, None))


async def test_contacts_page_by_id(store: Store) -> None:
    ws = await _ws(store)
    ids = sorted([(await _contact(store, ws, f"c{i}"))["id"] for i in range(5)])
    page1 = await store.contacts(ws, after=None, limit=2)
    page2 = await store.contacts(ws, after=page1[-1]["id"], limit=2)
    page3 = await store.contacts(ws, after=page2[-1]["id"], limit=2)
    assert [c["id"] for c in page1 + page2 + page3] == ids


async def test_notes(store: Store) -> None:
    ws = await _ws(store)
    cid = (await _contact(store, ws))["id"]
    first = await store.apply(ws, BOB, AddNote(cid, "first"), None)
    second = await store.apply(ws, ALICE, AddNote(cid, "second"), None)
    assert first.entity == {
        "id": first.entity["id"], "workspace_id": ws, "contact_id": cid, "body": "first",
        "author": {"id": "bob", "name": "Bob"}, "created_at": first.entity["created_at"],
        "version": 1, "updated_at": first.entity["created_at"],
    }
    assert first.event is not None and first.event.type == "note_added"
    assert await store.notes(ws, cid) == [first.entity, second.entity]


# ---- the log and retention ------------------------------------------------------------------


async def test_events_after_and_retention(store: Store) -> None:
    ws = await _ws(store)
    assert await store.oldest_seq(ws) == 1
    assert await store.head_seq("nope") == 0
    for i in range(5):
        await _contact(store, ws, f"c{i}")
    assert [e.seq for e in await store.events_after(ws, 2, 2)] == [3, 4]
    assert await store.oldest_seq(ws) == 1

    assert await store.delete_events_before("2000-01-01T00:00:00.000Z") == 0
    # any ISO-8601 spelling of the cutoff compares as time
    assert await store.delete_events_before("9999-01-01T00:00:00+00:00") == 5
    assert await store.events_after(ws, 0, 10) == []
    assert await store.head_seq(ws) == 5
    assert await store.oldest_seq(ws) == 6

    later = await store.apply(ws, ALICE, CreateContact("later"), None)
    assert later.seq == 6
    assert await store.oldest_seq(ws) == 6
    assert [e.seq for e in await store.events_after(ws, 0, 10)] == [6]


# ---- delivery cursors, sessions, stats ------------------------------------------------------


async def test_cursor_is_monotonic_and_clamped(store: Store) -> None:
    ws = await _ws(store)
    for i in range(5):
        await _contact(store, ws, f"c{i}")
    assert await store.cursor(ws, "bob") == 0
    assert await store.advance_cursor(ws, "bob", 3) == 3
    assert await store.advance_cursor(ws, "bob", 2) == 3
    assert await store.advance_cursor(ws, "bob", 99) == 5
    assert await store.cursor(ws, "bob") == 5
    assert await store.advance_cursor(ws, "carol", -4) == 0
    assert await store.cursor(ws, "alice") == 0


def _session(sid: str, user: str, start: str, end: str | None, **kw: Any) -> SessionRow:
    return SessionRow(sid, "", user, "node-1", start, end, **kw)


async def test_sessions_and_stats(store: Store) -> None:
    ws = await _ws(store)
    other = await _ws(store)
    cid = (await _contact(store, ws))["id"]
    await store.apply(ws, BOB, UpdateContact(cid, {"name": "B"}), None)
    await store.apply(ws, BOB, AddNote(cid, "n"), None)

    s1 = _session("s1", "alice", "2024-01-01T10:00:00.000Z", "2024-01-01T10:01:00.000Z",
                  messages_in=10, messages_out=20, events_delivered=30, events_acked=15,
                  close_code=1000)
    s2 = _session("s2", "bob", "2024-01-01T11:00:00.000Z", "2024-01-01T11:02:00.000Z",
                  messages_in=1, messages_out=2, events_delivered=10, events_acked=5)
    s3 = _session("s3", "alice", "2024-01-01T12:00:00.000Z", None, extra={"ua": "test"})
    elsewhere = _session("s4", "alice", "2024-01-01T12:00:00.000Z", None)
    for s, w in ((s1, ws), (s2, ws), (s3, ws), (elsewhere, other)):
        s.workspace_id = w
        await store.save_session(s)
    s3.messages_in, s3.events_delivered = 4, 5  # a periodic save overwrites the row
    await store.save_session(s3)

    assert await store.sessions(ws, active=True) == [s3]
    assert await store.sessions(ws, active=False) == [s2, s1]
    assert await store.sessions(ws, active=None) == [s3, s2, s1]
    assert await store.sessions(ws, active=None, user_id="alice") == [s3, s1]

    stats = await store.stats(ws)
    today = now_iso()[:10]
    assert stats == {
        "events_by_type": {"contact_created": 1, "contact_updated": 1, "note_added": 1},
        "events_by_day": [
            {"day": today, "type": "contact_created", "count": 1},
            {"day": today, "type": "contact_updated", "count": 1},
            {"day": today, "type": "note_added", "count": 1},
        ],
        "sessions": {"total": 3, "active": 1, "average_duration_s": 90.0},
        "messages": {"in": 15, "out": 22},
        "most_active_users": [{"user_id": "bob", "events": 2}, {"user_id": "alice", "events": 1}],
        "delivery": {"delivered": 45, "acked": 20, "rate": 20 / 45},
    }
    mine = await store.stats(ws, user_id="alice")
    assert mine["sessions"] == {"total": 2, "active": 1, "average_duration_s": 60.0}
    assert mine["messages"] == {"in": 14, "out": 20}
    assert mine["delivery"] == {"delivered": 35, "acked": 15, "rate": 15 / 35}
    empty = await store.stats(other, user_id="bob")
    assert empty["sessions"] == {"total": 0, "active": 0, "average_duration_s": None}
    assert empty["delivery"]["rate"] is None and empty["events_by_type"] == {}

    # cleanup drops closed sessions only
    assert await store.delete_sessions_before(FUTURE) == 2
    assert await store.sessions(ws, active=None) == [s3]
