"""Pipelined frames on one connection: read without waiting for commits, answered in the
order sent (acks, errors and pongs alike), seqs in send order. Real server, SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from conftest import Server, ServerFactory
from livespace.client import Client

pytestmark = pytest.mark.integration

REPLIES = ("ack", "error", "pong")


async def _replies(client: Client, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The next ``count`` replies, in the order they arrived."""
    return [await client.next(where=lambda f: f.get("type") in REPLIES, timeout=timeout)
            for _ in range(count)]


@pytest.fixture(scope="module")
def fast_server(servers: ServerFactory) -> Server:
    """A server whose rate limits leave room for hundreds of frames in flight."""
    return servers(LIVESPACE_RATE_LIMIT="100000", LIVESPACE_USER_RATE_LIMIT="100000")


async def test_replies_keep_frame_order_around_mutations(
    server: Server, clients: list[Client]
) -> None:
    ws = await server.workspace("alice", viewers=("victor",))
    alice = await server.connect(ws, "alice")
    clients.append(alice)
    created = await alice.request("contact_created", {"name": "Ada"})
    cid = created["data"]["id"]
    frames: list[dict[str, Any] | str] = [
        {"type": "contact_created", "ref": "m1", "data": {"name": "B"}},
        {"type": "ping", "ref": "p1"},
        {"type": "nonsense", "ref": "u1"},
        {"type": "contact_updated", "ref": "m2",
         "data": {"id": "missing", "changes": {"name": "x"}}},
        {"type": "note_added", "ref": "m3", "data": {"contact_id": cid, "body": "hi"}},
        {"type": "broadcast", "ref": "b1", "data": {"event": "cursor", "payload": {}}},
        {"type": "contact_updated", "ref": "m4",
         "data": {"id": cid, "changes": {"name": "Ada L"}, "base_version": 1}},
        {"type": "contact_updated", "ref": "m5",  # stale on name since m4: conflict
         "data": {"id": cid, "changes": {"name": "X"}, "base_version": 1}},
        {"type": "ack", "ref": "r1", "data": {"seq": 1}},
        {"type": "contact_created", "ref": "m1", "data": {"name": "B"}},  # a retry of m1
        {"type": "ping", "ref": "p2"},
    ]
    for frame in frames:
        await alice.send_raw(orjson.dumps(frame).decode())
    replies = await _replies(alice, len(frames))
    assert [r.get("ref") for r in replies] == [
        "m1", "p1", "u1", "m2", "m3", "b1", "m4", "m5", "r1", "m1", "p2",
    ]
    by_ref = {r["ref"]: r for r in replies if r["ref"] != "m1"}
    m1, retry = (r for r in replies if r["ref"] == "m1")
    assert [m1["seq"], by_ref["m3"]["seq"], by_ref["m4"]["seq"]] == [2, 3, 4]
    assert (retry["type"], retry["seq"], retry["data"]) == ("ack", 2, m1["data"])
    assert by_ref["p1"]["type"] == by_ref["p2"]["type"] == "pong"
    assert by_ref["u1"]["code"] == "unknown_type"
    assert by_ref["m2"]["code"] == "not_found"
    assert by_ref["m5"]["code"] == "conflict"
    assert by_ref["r1"]["type"] == "ack"
    assert [e["seq"] for e in await alice.events(4)] == [1, 2, 3, 4]

    victor = await server.connect(ws, "victor")
    clients.append(victor)
    await victor.send("contact_created", {"name": "V"}, "v1")
    await victor.send("ping", ref="v2")
    replies = await _replies(victor, 2)
    assert [(r["ref"], r.get("code")) for r in replies] == [("v1", "forbidden"), ("v2", None)]


async def test_hundreds_in_flight_are_acked_in_send_order(
    fast_server: Server, clients: list[Client]
) -> None:
    ws = await fast_server.workspace("alice", "bob")
    alice = await fast_server.connect(ws, "alice")
    bob = await fast_server.connect(ws, "bob")
    clients += [alice, bob]
    count = 300  # past the in-flight bound of one connection: it waits, nothing is refused
    for i in range(count):
        await alice.send("contact_created", {"name": f"a{i}"}, f"a{i}")
        if i % 3 == 0:
            await bob.send("contact_created", {"name": f"b{i}"}, f"b{i}")
    replies = await _replies(alice, count, timeout=60)
    assert [r["ref"] for r in replies] == [f"a{i}" for i in range(count)]
    assert all(r["type"] == "ack" for r in replies)
    seqs = [r["seq"] for r in replies]
    assert seqs == sorted(seqs)
    bobs = await _replies(bob, count // 3, timeout=60)
    assert all(r["type"] == "ack" for r in bobs)
    total = count + count // 3
    assert sorted(seqs + [r["seq"] for r in bobs]) == list(range(1, total + 1))
    assert [e["seq"] for e in await bob.events(total, timeout=60)] == list(range(1, total + 1))
