"""Group commit in SqlStore, on SQLite and on PostgreSQL: concurrent mutations of one
workspace share a transaction, each keeps its own outcome, events are handed to
``on_commit`` in seq order before the callers hear back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from livespace.codes import Error, Problem
from livespace.commands import AddNote, CreateContact, DeleteContact, Mutation, UpdateContact
from livespace.store import Actor, Committed, Event, batch, open_store
from livespace.store import log as event_log
from livespace.store.sql import SqlStore

pytestmark = pytest.mark.integration

ALICE = Actor("alice", "Alice")
BOB = Actor("bob", "Bob")


class Recorder:
    """An ``on_commit`` hook that notes each batch and which callers had heard back."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.answered_before: list[int] = []
        self.futures: list[asyncio.Future[Committed]] = []

    async def __call__(self, events: list[Event]) -> None:
        self.batches.append([e.seq for e in events])
        self.answered_before.append(sum(f.done() for f in self.futures))


async def _outcomes(futures: list[asyncio.Future[Committed]]) -> list[Any]:
    return list(await asyncio.gather(*futures, return_exceptions=True))


async def test_one_batch_keeps_each_outcome_and_fifo_seqs(store: SqlStore) -> None:
    ws = (await store.create_workspace("w", "alice")).id
    cid = (await store.apply(ws, ALICE, CreateContact("Ada"), None)).entity["id"]
    recorder = store.on_commit = Recorder()
    mutations: list[tuple[Actor, Mutation, str | None]] = [
        (ALICE, CreateContact("B"), "r1"),
        (ALICE, DeleteContact("missing"), "r2"),
        (BOB, UpdateContact(cid, {"name": "Ada L"}, 1), None),
        (BOB, UpdateContact(cid, {"name": "X"}, 1), None),  # stale: conflict
        (ALICE, CreateContact("B again"), "r1"),  # same ref earlier in the batch: a retry
        (BOB, AddNote(cid, "hi"), "n"),
        (ALICE, DeleteContact(cid), None),
        (BOB, AddNote(cid, "too late"), None),
    ]
    futures = [store.submit(ws, a, m, r) for a, m, r in mutations]
    recorder.futures = futures
    created, missing, updated, conflict, retry, note, deleted, late = await _outcomes(futures)
    assert recorder.batches == [[2, 3, 4, 5]]  # one transaction, seqs in FIFO order
    assert recorder.answered_before == [0]  # published before anyone heard back
    assert [c.seq for c in (created, updated, note, deleted)] == [2, 3, 4, 5]
    assert isinstance(missing, Problem) and missing.code == Error.NOT_FOUND
    assert isinstance(conflict, Problem) and conflict.code == Error.CONFLICT
    assert isinstance(late, Problem) and late.code == Error.NOT_FOUND
    assert retry == Committed(2, created.entity, None)
    assert deleted.entity["version"] == 3

    events = await store.events_after(ws, 1, 100)
    assert events == [c.event for c in (created, updated, note, deleted)]
    assert await store.head_seq(ws) == 5
    assert await store.get_contact(ws, cid) is None
    tomb = await store.get_contact(ws, cid, include_deleted=True)
    assert tomb is not None and tomb["name"] == "Ada L" and tomb["version"] == 3
    assert [n["body"] for n in await store.notes(ws, cid)] == ["hi"]
    # the refs were stored: retries in a later transaction answer the same
    again = await store.apply(ws, ALICE, CreateContact("B"), "r1")
    assert (again.seq, again.entity, again.event) == (2, created.entity, None)
    assert (await store.apply(ws, BOB, AddNote(cid, "x"), "n")).seq == 4


async def test_batches_are_bounded_and_follow_each_other(database_url: str) -> None:
    store = await open_store(database_url)
    assert isinstance(store, SqlStore)
    store.batch_max = 4
    try:
        await store.migrate()
        ws = (await store.create_workspace("w", "alice")).id
        recorder = store.on_commit = Recorder()
        futures = [store.submit(ws, ALICE, CreateContact(f"c{i}"), None) for i in range(10)]
        assert [c.seq for c in await asyncio.gather(*futures)] == list(range(1, 11))
        assert recorder.batches == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
        assert await store.head_seq(ws) == 10
    finally:
        await store.close()


async def test_an_unexpected_error_fails_the_whole_batch_and_leaves_nothing(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = (await store.create_workspace("w", "alice")).id
    write_plan = batch.write_plan

    async def broken(tx: Any, workspace_id: str, plan: Any, *, postgres: bool) -> None:
        await write_plan(tx, workspace_id, plan, postgres=postgres)  # all written, then it breaks
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(event_log, "write_plan", broken)  # as the log calls it
    futures = [store.submit(ws, ALICE, CreateContact(f"c{i}"), f"r{i}") for i in range(3)]
    outcomes = await _outcomes(futures)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert await store.head_seq(ws) == 0
    assert await store.events_after(ws, 0, 10) == []
    assert await store.contacts(ws, after=None, limit=10) == []

    monkeypatch.undo()
    ok = await store.apply(ws, ALICE, CreateContact("c0"), "r0")  # the ref was not used up
    assert ok.seq == 1 and ok.event is not None


async def test_a_caller_gone_before_its_batch_is_not_applied(store: SqlStore) -> None:
    ws = (await store.create_workspace("w", "alice")).id
    kept = store.submit(ws, ALICE, CreateContact("kept"), None)
    dropped = store.submit(ws, ALICE, CreateContact("dropped"), None)
    dropped.cancel()
    assert (await kept).seq == 1
    assert [c["name"] for c in await store.contacts(ws, after=None, limit=10)] == ["kept"]


async def test_unknown_workspace_answers_every_caller(store: SqlStore) -> None:
    futures = [store.submit("nope", ALICE, CreateContact(f"c{i}"), None) for i in range(3)]
    for outcome in await _outcomes(futures):
        assert isinstance(outcome, Problem) and outcome.code == Error.NOT_FOUND


async def test_on_commit_errors_do_not_fail_the_callers(store: SqlStore) -> None:
    ws = (await store.create_workspace("w", "alice")).id

    async def failing(events: list[Event]) -> None:
        raise RuntimeError("broker down")

    store.on_commit = failing
    committed = await store.apply(ws, ALICE, CreateContact("Ada"), None)
    assert committed.seq == 1 and await store.head_seq(ws) == 1


async def test_close_commits_what_is_queued(database_url: str) -> None:
    store = await open_store(database_url)
    await store.migrate()
    ws = (await store.create_workspace("w", "alice")).id
    futures = [store.submit(ws, ALICE, CreateContact(f"c{i}"), None) for i in range(5)]
    await store.close()
    assert [f.result().seq for f in futures] == [1, 2, 3, 4, 5]
    reopened = await open_store(database_url)
    try:
        assert await reopened.head_seq(ws) == 5
    finally:
        await reopened.close()


async def test_many_writers_on_several_stores_get_gapless_seqs(database_url: str) -> None:
    """Pipelined writers (many mutations in flight each) over 3 stores, as 3 processes."""
    stores = [await open_store(database_url) for _ in range(3)]
    try:
        await stores[0].migrate()
        ws = (await stores[0].create_workspace("w", "alice")).id
        seen: list[list[int]] = [[], [], []]
        for n, s in enumerate(stores):
            async def hook(events: list[Event], n: int = n) -> None:
                seen[n].extend(e.seq for e in events)
            s.on_commit = hook

        async def writer(n: int) -> list[int]:
            s = stores[n % 3]
            futures = [s.submit(ws, Actor(f"u{n}"), CreateContact(f"c{i}"), f"r{i}")
                       for i in range(60)]
            return [c.seq for c in await asyncio.gather(*futures)]

        per_writer = await asyncio.gather(*(writer(n) for n in range(6)))
        for seqs in per_writer:
            assert seqs == sorted(seqs)
        assert sorted(s for seqs in per_writer for s in seqs) == list(range(1, 361))
        for published in seen:  # each store publishes its own events in seq order
            assert published == sorted(published)
        assert sorted(s for published in seen for s in published) == list(range(1, 361))
        assert [e.seq for e in await stores[1].events_after(ws, 0, 1000)] == list(range(1, 361))
    finally:
        for s in stores:
            await s.close()


async def test_odd_sized_batches_write_every_row(store: SqlStore) -> None:
    """Rows go out in power-of-two chunks (4 + 2 + 1 here): none is lost or doubled."""
    ws = (await store.create_workspace("w", "alice")).id
    cid = (await store.apply(ws, ALICE, CreateContact("Ada"), None)).entity["id"]
    futures = [store.submit(ws, ALICE, CreateContact(f"c{i}"), f"c{i}") for i in range(7)]
    futures += [store.submit(ws, BOB, AddNote(cid, f"n{i}"), f"n{i}") for i in range(5)]
    assert [c.seq for c in await asyncio.gather(*futures)] == list(range(2, 14))
    assert len(await store.contacts(ws, after=None, limit=100)) == 8
    assert [n["body"] for n in await store.notes(ws, cid)] == [f"n{i}" for i in range(5)]
    assert [e.seq for e in await store.events_after(ws, 0, 100)] == list(range(1, 14))
    again = await store.apply(ws, BOB, AddNote(cid, "n4"), "n4")
    assert (again.seq, again.event) == (13, None)
