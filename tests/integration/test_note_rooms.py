"""Note rooms of two nodes in one process on one real store, each with a broker of its
own that does not reach the other: what a lost relay costs, and how the store repairs
it (after a broker reconnect; by compaction)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pycrdt import Doc, Text

from livespace import envelope
from livespace.broker.memory import MemoryBroker
from livespace.commands import AddNote, CreateContact
from livespace.notes import ywire
from livespace.notes.room import NoteLimits
from livespace.notes.rooms import MEMBERS_CHANNEL, NoteRooms
from livespace.store import Actor, Store, open_store

pytestmark = pytest.mark.integration
ALICE = Actor("alice", "Alice")


class Socket:
    """A note socket as a room sees it, keeping what it is sent in a pycrdt Doc."""

    def __init__(self, name: str) -> None:
        self.id = self.user_id = name
        self.role = "member"
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get("body", type=Text)
        self.closed: int | None = None

    def send(self, frame: bytes) -> None:
        message = ywire.decode(frame)
        if isinstance(message, ywire.SyncStep2 | ywire.SyncUpdate):
            self.doc.apply_update(message.update)

    def close(self, code: int, reason: str) -> None:
        self.closed = code


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url  # rooms on one node: the store's engine does not matter here


async def test_what_the_broker_lost_comes_from_the_store(store: Store) -> None:
    ws = (await store.create_workspace("Acme", "alice")).id
    contact = (await store.apply(ws, ALICE, CreateContact("Ada"), None)).entity
    note = (await store.apply(ws, ALICE, AddNote(contact["id"], "Hello"), None)).entity
    tasks: set[asyncio.Task[Any]] = set()

    def spawn(coro: Any) -> None:
        tasks.add(asyncio.get_running_loop().create_task(coro))

    limits = NoteLimits(compact_updates=1000)
    one = NoteRooms(store, MemoryBroker(), limits, spawn)
    two = NoteRooms(store, MemoryBroker(), limits, spawn)  # cut off from one
    a, b = Socket("a"), Socket("b")
    room_one = await one.join(ws, note["id"], a)
    room_two = await two.join(ws, note["id"], b)
    assert room_one is not None and room_two is not None
    room_one.answer_step1(a, a.doc.get_state())  # the client's sync step 1
    room_two.answer_step1(b, b.doc.get_state())
    assert str(a.text) == str(b.text) == "Hello"

    editor: Doc[Any] = Doc()
    editor.apply_update(a.doc.get_update())
    before = editor.get_state()
    editor.get("body", type=Text).insert(5, " world")
    room_one.submit(a, editor.get_update(before), ALICE)
    for _ in range(100):
        if room_one.doc.get("body", type=Text).to_py() == "Hello world":
            break
        await asyncio.sleep(0.02)
    assert str(b.text) == "Hello"  # the relay never reached node two

    await two.catch_up()  # what a broker reconnect does
    assert str(b.text) == "Hello world"
    assert str(room_two.text) == "Hello world"

    # node two's compaction takes what node one stored into the snapshot too
    await room_two.compact()
    loaded = await store.note_doc(ws, note["id"])
    assert loaded is not None and loaded.snapshot is not None
    fresh: Doc[Any] = Doc()
    fresh.apply_update(loaded.snapshot)
    for _, data in loaded.updates:
        fresh.apply_update(data)
    assert str(fresh.get("body", type=Text)) == "Hello world"
    # membership changes, on the node-wide channel
    await two.broker.publish(MEMBERS_CHANNEL, envelope.control(
        {"kind": "role_changed", "user_id": "b", "role": "viewer", "workspace_id": ws}))
    assert b.role == "viewer"
    await one.broker.publish(MEMBERS_CHANNEL, envelope.control(
        {"kind": "member_removed", "user_id": "a", "workspace_id": ws}))
    assert a.closed == 4003 and b.closed is None
    await one.leave(room_one, a)
    await two.leave(room_two, b)
    await asyncio.gather(*tasks, return_exceptions=True)
    assert (await store.note(ws, note["id"]))["body"] == "Hello world"  # type: ignore[index]


async def test_a_note_that_cannot_be_loaded_leaves_nothing_behind(sqlite_url: str) -> None:
    store = await open_store(sqlite_url)
    await store.migrate()
    ws = (await store.create_workspace("Acme", "alice")).id
    await store.close()  # the store is gone: loading the note fails
    broker = MemoryBroker()
    rooms = NoteRooms(store, broker, NoteLimits(), lambda coro: None)
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        await rooms.join(ws, "n1", Socket("a"))
    assert rooms.rooms == {} and rooms.clients == 0
    assert set(broker.channels) <= {MEMBERS_CHANNEL}  # no note channel left
