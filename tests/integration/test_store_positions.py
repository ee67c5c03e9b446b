"""The log's position, epochs and consistent lists, on every store engine (issue 8)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from livespace.commands import AddNote, CreateContact, UpdateContact
from livespace.store import Actor, Store, open_store
from services import RUN_ID, _pg_admin, _pg_url_for

pytestmark = pytest.mark.integration

ALICE = Actor("alice", "Alice")


async def test_position_names_epoch_head_and_oldest(store: Store) -> None:
    ws = (await store.create_workspace("Acme", "alice")).id
    empty = await store.position(ws)
    assert empty is not None and empty.epoch and (empty.head, empty.oldest) == (0, 1)
    for name in ("a", "b", "c"):
        await store.apply(ws, ALICE, CreateContact(name), None)
    pos = await store.position(ws)
    assert pos is not None and (pos.epoch, pos.head, pos.oldest) == (empty.epoch, 3, 1)
    assert await store.position("nope") is None
    other = (await store.create_workspace("Other", "alice")).id
    other_pos = await store.position(other)
    assert other_pos is not None and other_pos.epoch != pos.epoch


async def test_renew_epoch(store: Store) -> None:
    a = (await store.create_workspace("A", "alice")).id
    b = (await store.create_workspace("B", "alice")).id
    before = {ws: (await store.position(ws)).epoch for ws in (a, b)}  # type: ignore[union-attr]
    assert await store.renew_epoch(a) == 1
    after_a = (await store.position(a)).epoch  # type: ignore[union-attr]
    assert after_a != before[a]
    assert (await store.position(b)).epoch == before[b]  # type: ignore[union-attr]
    assert await store.renew_epoch() == 2
    assert (await store.position(b)).epoch != before[b]  # type: ignore[union-attr]


async def test_lists_carry_the_head_they_reflect(store: Store) -> None:
    ws = (await store.create_workspace("Acme", "alice")).id
    ada = (await store.apply(ws, ALICE, CreateContact("Ada"), None)).entity
    await store.apply(ws, ALICE, AddNote(ada["id"], "hello"), None)
    listing = await store.contact_list(ws, after=None, limit=10)
    pos = await store.position(ws)
    assert listing is not None and pos is not None
    assert [c["id"] for c in listing.items] == [ada["id"]]
    assert (listing.seq, listing.epoch) == (2, pos.epoch)
    notes = await store.note_list(ws, ada["id"])
    assert notes is not None and [n["body"] for n in notes.items] == ["hello"]
    assert notes.seq == 2
    assert await store.note_list(ws, "nope") is None
    assert await store.contact_list("nope", after=None, limit=10) is None


async def test_list_is_one_read_under_concurrent_writers(store: Store) -> None:
    """Each listed contact's version is the one its events up to ``seq`` give it."""
    ws = (await store.create_workspace("Acme", "alice")).id
    ids = [(await store.apply(ws, ALICE, CreateContact(f"c{i}"), None)).entity["id"]
           for i in range(20)]
    stop = asyncio.Event()

    async def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            await asyncio.gather(*(store.apply(ws, ALICE, UpdateContact(cid, {"company": str(n)}),
                                               None) for cid in ids[n % 3::3]))

    writer = asyncio.create_task(write())
    try:
        for _ in range(15):
            listing = await store.contact_list(ws, after=None, limit=100)
            assert listing is not None
            versions: dict[str, int] = {}
            for event in await store.events_after(ws, 0, 100_000):
                if event.seq <= listing.seq:
                    versions[event.data["id"]] = event.data["version"]
            assert {c["id"]: c["version"] for c in listing.items} == versions
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await writer


async def test_a_copy_of_a_postgres_database_has_new_epochs(pg_url: str) -> None:
    """A database restored into a new one (here: a template copy) is another log."""
    store = await open_store(pg_url)
    await store.migrate()
    ws = (await store.create_workspace("Acme", "alice")).id
    await store.apply(ws, ALICE, CreateContact("Ada"), None)
    original = await store.position(ws)
    await store.close()
    name = f"livespace_copy_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_url.rsplit("/", 1)[1]}"')
    copy = await open_store(_pg_url_for(name))
    try:
        copied = await copy.position(ws)
        assert original is not None and copied is not None
        assert copied.head == original.head == 1
        assert copied.epoch != original.epoch
    finally:
        await copy.close()
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_migration_0002_compaction_fills_each_contacts_latest_seq(store: Store) -> None:
    """The backfill of an existing database gives each contact the seq of its latest
    event, as the batch writes it from then on."""
    from livespace.store.migrate import available

    ws = (await store.create_workspace("Acme", "alice")).id
    a = (await store.apply(ws, ALICE, CreateContact("a"), None)).entity["id"]
    b = (await store.apply(ws, ALICE, CreateContact("b"), None)).entity["id"]
    await store.apply(ws, ALICE, UpdateContact(a, {"company": "x"}), None)
    await store.apply(ws, ALICE, AddNote(b, "note"), None)
    written = await store.compacted_seqs(ws, 0, 4)
    assert written == [2, 3, 4]
    db = store.db  # type: ignore[attr-defined]
    backfill = next(sql for version, sql in available(db.dialect)
                    if version == "0002_compaction")
    update = next(s for s in backfill.split(";") if "UPDATE contacts" in s)
    await db.execute("UPDATE contacts SET seq = 0")
    assert await store.compacted_seqs(ws, 0, 4) == [4]
    await db.execute(update)
    assert await store.compacted_seqs(ws, 0, 4) == written
