"""The Store contract of collaborative notes' documents, on SQLite and PostgreSQL:
appends in order, a consistent load, compare-and-set compaction, the body through the
mutation path (``note_updated``: one seq, at most one a second)."""

from __future__ import annotations

import asyncio

import pytest

from livespace.codes import Error, Problem
from livespace.commands import AddNote, CreateContact, UpdateNote
from livespace.store import Actor, Store

pytestmark = pytest.mark.integration
ALICE = Actor("alice", "Alice")


async def _note(store: Store, body: str = "Hello") -> tuple[str, str]:
    ws = (await store.create_workspace("Acme", "alice")).id
    contact = (await store.apply(ws, ALICE, CreateContact("Ada"), None)).entity
    note = (await store.apply(ws, ALICE, AddNote(contact["id"], body), None)).entity
    assert note["version"] == 1
    return ws, note["id"]


async def test_updates_append_in_order_and_load_with_the_note(store: Store) -> None:
    ws, note_id = await _note(store)
    loaded = await store.note_doc(ws, note_id)
    assert loaded is not None and loaded.snapshot is None and loaded.updates == []
    assert loaded.note["body"] == "Hello"
    first = await store.append_note_updates(ws, note_id, [b"a", b"bb"])
    second = await store.append_note_updates(ws, note_id, [b"ccc"])
    assert first == sorted(first) and second[0] > first[-1]
    loaded = await store.note_doc(ws, note_id)
    assert loaded is not None
    assert [data for _, data in loaded.updates] == [b"a", b"bb", b"ccc"]
    assert [i for i, _ in loaded.updates] == first + second
    assert await store.note_storage(ws, note_id) == {
        "updates": 3, "update_bytes": 6, "snapshot_bytes": 0}
    # another workspace does not see it
    other = (await store.create_workspace("Other", "alice")).id
    assert await store.note_doc(other, note_id) is None
    assert await store.note_doc(ws, "missing") is None


async def test_compaction_is_compare_and_set(store: Store) -> None:
    ws, note_id = await _note(store)
    ids = await store.append_note_updates(ws, note_id, [b"u1", b"u2", b"u3"])
    assert await store.note_snapshot(ws, note_id) == (None, 0)
    # the snapshot covers the first two; the third stays
    assert await store.compact_note(ws, note_id, b"S1", ids[:2], 0)
    assert await store.note_snapshot(ws, note_id) == (b"S1", 1)
    loaded = await store.note_doc(ws, note_id)
    assert loaded is not None and loaded.snapshot == b"S1" and loaded.snapshot_version == 1
    assert loaded.updates == [(ids[2], b"u3")]
    # a compaction from a stale version changes nothing
    assert not await store.compact_note(ws, note_id, b"stale", ids[2:], 0)
    assert not await store.compact_note(ws, note_id, b"stale", ids[2:], 5)
    assert await store.note_snapshot(ws, note_id) == (b"S1", 1)
    assert await store.compact_note(ws, note_id, b"S2", ids[2:], 1)
    assert await store.note_storage(ws, note_id) == {
        "updates": 0, "update_bytes": 0, "snapshot_bytes": 2}


async def test_concurrent_compactions_one_wins(store: Store) -> None:
    ws, note_id = await _note(store)
    ids = await store.append_note_updates(ws, note_id, [b"x"] * 10)
    results = await asyncio.gather(*(store.compact_note(ws, note_id, b"S%d" % n, ids, 0)
                                     for n in range(4)))
    assert sorted(results) == [False, False, False, True]


async def test_the_body_changes_through_the_log(store: Store) -> None:
    ws, note_id = await _note(store, "Hello")
    done = await store.apply(ws, ALICE, UpdateNote(note_id, "Hello world"), None)
    assert done.event is not None and done.event.type == "note_updated"
    assert done.entity["body"] == "Hello world" and done.entity["version"] == 2
    assert done.event.seq == await store.head_seq(ws)
    note = await store.note(ws, note_id)
    assert note == done.entity
    assert (await store.notes(ws, note["contact_id"]))[0] == done.entity
    # within a second of the last: refused with the time to wait, nothing written
    with pytest.raises(Problem) as refused:
        await store.apply(ws, ALICE, UpdateNote(note_id, "Hello world!"), None)
    assert refused.value.code == Error.RATE_LIMITED
    assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 1.0
    # the same body again: nothing to do
    with pytest.raises(Problem) as same:
        await store.apply(ws, ALICE, UpdateNote(note_id, "Hello world"), None)
    assert same.value.code == Error.CONFLICT
    with pytest.raises(Problem) as missing:
        await store.apply(ws, ALICE, UpdateNote("missing", "x"), None)
    assert missing.value.code == Error.NOT_FOUND
    assert done.event.seq == await store.head_seq(ws)
