"""Compacted replay (``since=N&compact=1``) on the socket and over HTTP, against a real
server on SQLite and PostgreSQL (DESIGN.md section 3, "Compacted replay"; issue 8).

The property: applying a compacted replay as upserts (by contact id, highest version;
notes by id) on top of the state at ``N`` gives the same state as the full replay."""

from __future__ import annotations

import random
from typing import Any

import pytest

from conftest import Server, ServerFactory
from livespace.client import Client

pytestmark = pytest.mark.integration

FAST = {"LIVESPACE_RATE_LIMIT": "100000", "LIVESPACE_USER_RATE_LIMIT": "100000",
        "LIVESPACE_HTTP_RATE_LIMIT": "100000"}
EVENTS = frozenset({"contact_created", "contact_updated", "contact_deleted", "note_added",
                    "note_updated"})
State = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def server(servers: ServerFactory) -> Server:
    return servers(**FAST)


def apply(state: State, events: list[dict[str, Any]]) -> State:
    """Events as upserts: a contact by id keeping the highest version, a note by id."""
    out = {k: dict(v) for k, v in state.items()}
    for event in events:
        key = ("note:" if event["type"].startswith("note_") else "contact:") + event["data"]["id"]
        held = out.get(key)
        if held is None or held.get("version", 0) <= event["data"].get("version", 0):
            out[key] = event["data"]
    return out


async def random_history(client: Client, rng: random.Random, count: int) -> None:
    live: list[str] = []
    for i in range(count):
        roll = rng.random()
        if not live or roll < 0.15:
            ack = await client.request("contact_created", {"name": f"c{i}"})
            live.append(ack["data"]["id"])
        elif roll < 0.75:
            await client.request("contact_updated", {"id": rng.choice(live),
                                                     "changes": {"company": f"co{i}"}})
        elif roll < 0.85:
            cid = live.pop(rng.randrange(len(live)))
            await client.request("contact_deleted", {"id": cid})
        else:
            await client.request("note_added", {"contact_id": rng.choice(live), "body": f"n{i}"})


async def replay(server: Server, ws: str, since: int, *, compact: bool,
                 clients: list[Client]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The welcome and the replayed events of ``since`` (``replay.count`` of them)."""
    client = await server.connect(ws, "bob", since=since, compact=compact)
    clients.append(client)
    welcome = client.welcome
    events = [await client.next(where=lambda f: f.get("type") in EVENTS, timeout=20)
              for _ in range(welcome["replay"]["count"])]
    await client.close()
    return welcome, events


async def test_compacted_replay_gives_the_state_of_the_full_one(
        server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    alice = await server.connect(ws, "alice")
    clients.append(alice)
    rng = random.Random(8)
    await random_history(alice, rng, 300)
    full_log = await server.events("alice", ws)
    head = full_log[-1]["seq"]
    assert head == 300  # one event a change

    for since in (0, 1, 37, 150, head - 5, head):
        welcome, compacted = await replay(server, ws, since, compact=True, clients=clients)
        info = welcome["replay"]
        assert info["compacted"] is True and info["to_seq"] == head
        seqs = [e["seq"] for e in compacted]
        assert seqs == sorted(set(seqs)) and all(s > since for s in seqs)
        contacts = [e["data"]["id"] for e in compacted if e["type"].startswith("contact_")]
        assert len(contacts) == len(set(contacts)), "a contact arrived twice"
        notes = [e for e in full_log if e["seq"] > since and e["type"].startswith("note_")]
        assert [e for e in compacted if e["type"].startswith("note_")] == notes
        before = apply({}, [e for e in full_log if e["seq"] <= since])
        assert apply(before, compacted) == apply({}, full_log)
        assert len(compacted) <= head - since

        # the same over HTTP, in pages
        async with server.api("bob") as api:
            paged, cursor = [], since
            while True:
                page = (await api.get(f"/api/workspaces/{ws}/events",
                                      params={"since": cursor, "compact": 1, "limit": 17})).json()
                assert page["compacted"] is True
                paged += page["events"]
                if not page["has_more"]:
                    break
                cursor = page["events"][-1]["seq"]
        assert paged == compacted

    # far behind: far fewer frames than events
    welcome, compacted = await replay(server, ws, 0, compact=True, clients=clients)
    assert welcome["replay"]["count"] == len(compacted) < head / 2


async def test_live_events_follow_a_compacted_replay_without_a_gap(
        server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    alice = await server.connect(ws, "alice")
    clients.append(alice)
    ack = await alice.request("contact_created", {"name": "Ada"})
    cid = ack["data"]["id"]
    for i in range(30):
        await alice.request("contact_updated", {"id": cid, "changes": {"company": f"v{i}"}})
    bob = await server.connect(ws, "bob", since=0, compact=True)
    clients.append(bob)
    assert bob.welcome["replay"] == {"from_seq": 1, "to_seq": 31, "count": 1,
                                     "compacted": True}
    only = await bob.next(where=lambda f: f.get("type") in EVENTS, timeout=10)
    assert (only["seq"], only["data"]["version"], only["data"]["company"]) == (31, 31, "v29")
    await alice.request("contact_updated", {"id": cid, "changes": {"company": "live"}})
    await alice.request("contact_deleted", {"id": cid})
    live = [await bob.next(where=lambda f: f.get("type") in EVENTS, timeout=10)
            for _ in range(2)]
    assert [(e["seq"], e["type"]) for e in live] == [(32, "contact_updated"),
                                                      (33, "contact_deleted")]
    # compact without since, or a stale position: as without compact
    plain = await server.connect(ws, "bob", compact=True)
    stale = await server.connect(ws, "bob", since=0, epoch="old", compact=True)
    clients += [plain, stale]
    assert "replay" not in plain.welcome and stale.welcome["resync_required"] is True
