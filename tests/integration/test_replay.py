"""Resume with ``since``, retention, idempotent ``ref``s and delivery receipts, against a
real server on SQLite and PostgreSQL (DESIGN.md sections 1, 3, 4; issue 3)."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import orjson
import psutil
import pytest
import websockets

from conftest import LIVESPACE, Server, ServerFactory
from livespace.client import DURABLE, Client
from livespace.store import open_store

pytestmark = pytest.mark.integration


# ---- helpers ------------------------------------------------------------------------------


FAST = {"LIVESPACE_RATE_LIMIT": "100000", "LIVESPACE_USER_RATE_LIMIT": "100000",
        "LIVESPACE_HTTP_RATE_LIMIT": "100000"}
LONG_AGO = "2000-01-01T00:00:00.000Z"
PAD = "x" * 1500


@pytest.fixture(scope="module")
def server(servers: ServerFactory) -> Server:
    """This module's server: rate limits (not under test here) out of the way of bulk
    pipelined writes; the periodic cleanup every second (retention stays 30 days)."""
    return servers(LIVESPACE_CLEANUP_INTERVAL_S="1", **FAST)



async def frames(client: Client, timeout: float = 10.0) -> AsyncIterator[dict[str, Any]]:
    """Every frame the client gets from now on, in order (batches unpacked), without
    piling them up in its inbox."""
    while client.inbox:
        yield client.inbox.pop(0)
    while True:
        raw = await asyncio.wait_for(client.ws.recv(), timeout)
        obj = orjson.loads(raw)
        for frame in obj if isinstance(obj, list) else [obj]:
            yield frame


async def write(client: Client, items: list[tuple[str, dict[str, Any]]], *, prefix: str,
                per_frame: int = 50, window: int = 500
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pipeline ``items`` (type, data) over a ``batch=1`` client, ``per_frame`` to a
    frame and at most ``window`` unanswered, reading meanwhile; wait for every ack.
    Returns the acks in send order and the durable events the writer itself received
    (the sender sees its own events too)."""
    refs = [f"{prefix}-{i}" for i in range(len(items))]
    wanted = set(refs)
    acks: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    answered = asyncio.Event()

    async def send() -> None:
        for start in range(0, len(items), per_frame):
            while start - len(acks) >= window:
                answered.clear()
                await answered.wait()
            batch = [{"type": t, "ref": refs[i], "data": d}
                     for i, (t, d) in enumerate(items[start:start + per_frame], start)]
            await client.send_raw(orjson.dumps(batch).decode())

    sending = asyncio.create_task(send())
    try:
        async for frame in frames(client, timeout=30):
            if frame["type"] == "error":
                raise AssertionError(f"write failed: {frame}")
            if frame["type"] == "ack" and frame.get("ref") in wanted:
                acks[frame["ref"]] = frame
                answered.set()
            elif frame["type"] in DURABLE:
                events.append(frame)
            if len(acks) == len(refs) and events[-1]["seq"] >= acks[refs[-1]]["seq"]:
                break
        await sending
    finally:
        sending.cancel()
    return [acks[ref] for ref in refs], events


async def no_more_events(client: Client, wait: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        extra = await client.next(where=lambda f: f.get("type") in DURABLE, timeout=wait)
        raise AssertionError(f"unexpected event {extra}")


def cleanup(server: Server, days: int) -> dict[str, Any]:
    """``livespace cleanup`` as an operator runs it, with the server's environment."""
    done = subprocess.run([LIVESPACE, "cleanup", "--retention-days", str(days)],
                          env=server.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    counts: dict[str, Any] = json.loads(done.stdout)
    return counts


# ---- 1. resume across a restart -----------------------------------------------------------


async def test_offline_member_resumes_exactly_what_it_missed_across_a_restart(
        server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    bob = await server.connect(ws, "bob")
    alice = await server.connect(ws, "alice", batch=True)
    clients += [bob, alice]
    first = await alice.request("contact_created", {"name": "Before"})
    assert (await bob.events(1))[0]["seq"] == first["seq"]
    since = bob.last_seq
    await bob.close()

    # 200 events of every kind while bob is away
    created, _ = await write(alice, [("contact_created", {"name": f"C{i}"}) for i in range(50)],
                             prefix="mk")
    ids = [ack["data"]["id"] for ack in created]
    rest: list[tuple[str, dict[str, Any]]] = [
        *(("note_added", {"contact_id": ids[i % 40], "body": f"note {i}"}) for i in range(100)),
        *(("contact_updated", {"id": ids[i], "changes": {"company": f"Co {i}"}})
          for i in range(40)),
        *(("contact_deleted", {"id": ids[40 + i]}) for i in range(10)),
    ]
    await write(alice, rest, prefix="ch")
    async with server.api("alice") as api:
        log = (await api.get(f"/api/workspaces/{ws}/events",
                             params={"since": since, "limit": 1000})).json()
    missed = log["events"]
    assert len(missed) == 200 and log["head_seq"] == since + 200 and not log["has_more"]
    assert [e["seq"] for e in missed] == list(range(since + 1, since + 201))
    assert {e["type"] for e in missed} == set(DURABLE) - {"note_updated"}  # the four written

    server.restart()  # same database: the log is durable, the broker and rooms are new

    bob = await server.connect(ws, "bob", since=since)
    clients.append(bob)
    assert bob.welcome["replay"] == {"from_seq": since + 1, "to_seq": since + 200, "count": 200}
    assert bob.welcome["seq"] == since + 200 and "resync_required" not in bob.welcome
    replayed = await bob.events(200)
    assert replayed == missed  # the same frames, event ids and timestamps as stored
    await no_more_events(bob)

    # and live events continue after the replay
    alice = await server.connect(ws, "alice")
    clients.append(alice)
    ack = await alice.request("note_added", {"contact_id": ids[0], "body": "after restart"})
    assert ack["seq"] == since + 201
    live = (await bob.events(1))[0]
    assert live["seq"] == since + 201 and live["data"] == ack["data"]


# ---- 2. the replay -> live hand-off under concurrent writes -------------------------------


async def keep_writing(client: Client, tag: str, stop: asyncio.Event,
                       acks: dict[int, dict[str, Any]], most: int = 1500) -> None:
    """Pipeline contact creations, 5 to a frame, until ``stop`` (or ``most``); then wait
    for every ack."""
    sent = 0
    reader = asyncio.create_task(_collect_acks(client, acks))
    try:
        while not stop.is_set() and sent < most:
            batch = [{"type": "contact_created", "ref": f"{tag}{sent + i}",
                      "data": {"name": f"{tag} {sent + i}", "fields": {"pad": PAD}}}
                     for i in range(5)]
            await client.send_raw(orjson.dumps(batch).decode())
            sent += 5
            await asyncio.sleep(0.025)  # continuous, short of saturating the store
        while sum(1 for a in acks.values() if a["ref"].startswith(tag)) < sent:
            await asyncio.sleep(0.01)
            if reader.done():
                reader.result()
    finally:
        reader.cancel()


async def _collect_acks(client: Client, acks: dict[int, dict[str, Any]]) -> None:
    async for frame in frames(client, timeout=30):
        assert frame["type"] != "error", frame
        if frame["type"] == "ack":
            acks[frame["seq"]] = frame


async def resume_repeatedly(server: Server, ws: str, user: str, start: int, rounds: int,
                            rng: random.Random, batch: bool) -> list[dict[str, Any]]:
    """Reconnect ``rounds`` times with ``since``, each time reading part of what is sent
    (sometimes less than the replay, sometimes into live events) and going away."""
    received: list[dict[str, Any]] = []
    since = start
    for _ in range(rounds):
        client = await server.connect(ws, user, since=since, batch=batch)
        try:
            replay = client.welcome["replay"]
            assert replay["from_seq"] == since + 1 and replay["to_seq"] >= since
            # not reading for a moment: the replay fills the socket and the outbox and
            # waits, while live events queue behind it
            await asyncio.sleep(rng.choice([0.0, 0.05, 0.15]))
            want = rng.choice([0, 1, replay["count"] // 2, replay["count"],
                               replay["count"] + rng.randint(1, 60)])
            got = await client.events(want, timeout=15) if want else []
        finally:
            client.ws.transport.abort()  # gone, like a laptop lid closing mid-stream
        assert [e["seq"] for e in got] == list(range(since + 1, since + 1 + len(got)))
        received += got
        since = got[-1]["seq"] if got else since
        await asyncio.sleep(rng.uniform(0.0, 0.25))  # offline while the writers go on
    return received


async def test_resume_while_others_write_has_no_gap_and_no_duplicate(
        servers: ServerFactory, clients: list[Client]) -> None:
    # events of ~1.6 KiB and the smallest outbox: a replay of a few hundred fills the
    # socket and waits for the reader (backpressure) while the writers go on
    server = servers(LIVESPACE_SEND_QUEUE_BYTES="65536", **FAST)
    ws = await server.workspace("alice", "carol", "bob", "dave")
    writers = [await server.connect(ws, user, batch=True) for user in ("alice", "carol")]
    clients += writers
    start = writers[0].welcome["seq"]
    stop = asyncio.Event()
    acks: dict[int, dict[str, Any]] = {}
    writing = [asyncio.create_task(keep_writing(c, tag, stop, acks))
               for c, tag in zip(writers, ("a", "c"), strict=True)]
    try:
        await asyncio.sleep(0.2)
        readers = await asyncio.gather(
            resume_repeatedly(server, ws, "bob", start, 8, random.Random(3), batch=False),
            resume_repeatedly(server, ws, "dave", start, 8, random.Random(4), batch=True),
        )
    finally:
        stop.set()
        await asyncio.gather(*writing)
    head = max(acks)
    assert sorted(acks) == list(range(start + 1, head + 1))  # every write got its own seq
    assert head - start >= 300, "the writers should have kept writing through the resumes"

    for user, received in zip(("bob", "dave"), readers, strict=True):
        since = received[-1]["seq"] if received else start
        last = await server.connect(ws, user, since=since)
        clients.append(last)
        assert last.welcome["replay"]["count"] == head - since
        received += await last.events(head - since, timeout=15)
        await no_more_events(last)
        seqs = [e["seq"] for e in received]
        assert seqs == list(range(start + 1, head + 1)), f"{user}: gap or duplicate"
        assert len({e["event_id"] for e in received}) == len(received)
        for event in received:
            assert event["data"] == acks[event["seq"]]["data"]


# ---- 3. idempotent refs -------------------------------------------------------------------


async def test_a_retried_ref_is_applied_once_also_across_a_restart(
        server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    alice = await server.connect(ws, "alice")
    bob = await server.connect(ws, "bob")
    clients += [alice, bob]
    first = await alice.request("contact_created", {"name": "Once"}, ref="mk-1")
    again = await alice.request("contact_created", {"name": "Once"}, ref="mk-1")
    changed = await alice.request("contact_created", {"name": "Other"}, ref="mk-1")
    assert again == first and changed == first  # the ref names the mutation: same ack
    assert (await bob.events(1))[0]["seq"] == first["seq"]
    await no_more_events(bob)

    # two tabs retrying the same ref at the same moment still make one event
    tab = await server.connect(ws, "alice")
    clients.append(tab)
    racing = await asyncio.gather(
        *(c.request("note_added", {"contact_id": first["data"]["id"], "body": "hi"},
                    ref="race-1") for c in (alice, tab)))
    assert racing[0]["seq"] == racing[1]["seq"] == first["seq"] + 1
    assert racing[0]["data"] == racing[1]["data"]
    assert [e["seq"] for e in await bob.events(1)] == [first["seq"] + 1]
    await no_more_events(bob)

    # a failed mutation is not remembered: its ref applies once it can
    missing = await alice.request("note_added", {"contact_id": "f" * 32, "body": "x"},
                                  ref="late-1")
    assert missing["type"] == "error" and missing["code"] == "not_found"
    late = await alice.request("note_added", {"contact_id": first["data"]["id"], "body": "x"},
                               ref="late-1")
    assert late["type"] == "ack" and late["seq"] == first["seq"] + 2
    assert [e["seq"] for e in await bob.events(1)] == [late["seq"]]

    # the same ref from another user is another mutation
    bobs = await bob.request("contact_created", {"name": "Bob's"}, ref="mk-1")
    assert bobs["seq"] == first["seq"] + 3 and bobs["data"]["id"] != first["data"]["id"]
    assert (await bob.events(1))[0]["seq"] == bobs["seq"]

    server.restart()
    alice = await server.connect(ws, "alice")
    clients.append(alice)
    assert await alice.request("contact_created", {"name": "Once"}, ref="mk-1") == first
    async with server.api("alice") as api:
        log = (await api.get(f"/api/workspaces/{ws}/events", params={"since": 0})).json()
    assert [e["seq"] for e in log["events"]] == [1, 2, 3, 4] and log["head_seq"] == 4

    # REST: Idempotency-Key is the ref of the HTTP path, shared with the socket's refs
    async with server.api("alice") as api, server.api("bob") as bob_api:
        url = f"/api/workspaces/{ws}/contacts"
        made = [await api.post(url, json={"name": "Rest"}, headers={"Idempotency-Key": "k-1"})
                for _ in range(3)]
        assert [r.status_code for r in made] == [201, 201, 201]
        assert made[0].json() == made[1].json() == made[2].json()
        assert made[0].json()["seq"] == 5
        contact = made[0].json()["id"]
        note = [await api.post(f"{url}/{contact}/notes", json={"body": "n"},
                               headers={"Idempotency-Key": "k-2"}) for _ in range(2)]
        assert note[0].json() == note[1].json() and note[0].json()["seq"] == 6
        patched = [await api.patch(f"{url}/{contact}", json={"company": "X"},
                                   headers={"Idempotency-Key": "k-3"}) for _ in range(2)]
        assert patched[0].json() == patched[1].json() and patched[0].json()["version"] == 2
        deleted = [await api.delete(f"{url}/{contact}", headers={"Idempotency-Key": "k-4"})
                   for _ in range(2)]
        assert [r.status_code for r in deleted] == [200, 200]
        assert deleted[0].json() == deleted[1].json() and deleted[0].json()["seq"] == 8
        socket_retry = await alice.request("contact_created", {"name": "Rest"}, ref="k-1")
        assert socket_retry["seq"] == 5 and socket_retry["data"]["id"] == contact
        other = await bob_api.post(url, json={"name": "Rest"}, headers={"Idempotency-Key": "k-1"})
        assert other.status_code == 201 and other.json()["seq"] == 9
        log = (await api.get(f"/api/workspaces/{ws}/events", params={"since": 4})).json()
    assert [e["seq"] for e in log["events"]] == [5, 6, 7, 8, 9] and log["head_seq"] == 9


# ---- 4. retention and resync --------------------------------------------------------------


async def test_since_beyond_retention_or_head_requires_resync(
        server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    alice = await server.connect(ws, "alice")
    clients.append(alice)
    kept, gone, also = [
        (await alice.request("contact_created", {"name": n}))["data"]["id"]
        for n in ("Kept", "Gone", "Also")
    ]
    assert (await alice.request("contact_deleted", {"id": gone}))["seq"] == 4
    await alice.request("note_added", {"contact_id": kept, "body": "n"})
    head = 5

    counts = cleanup(server, days=0)
    assert counts["events_deleted"] >= head and counts["retention_days"] == 0

    for since in (0, 1, head - 1):  # something after since is gone: no silent partial replay
        bob = await server.connect(ws, "bob", since=since)
        clients.append(bob)
        assert bob.welcome["resync_required"] is True and "replay" not in bob.welcome
        assert bob.welcome["oldest_seq"] == head + 1 and bob.welcome["seq"] == head
    at_head = await server.connect(ws, "bob", since=head)  # missed nothing: no resync
    clients.append(at_head)
    assert at_head.welcome["replay"] == {"from_seq": head + 1, "to_seq": head, "count": 0}
    for since in (head + 1, 10**9, -1):
        odd = await server.connect(ws, "bob", since=since)
        clients.append(odd)
        assert odd.welcome["resync_required"] is True and odd.welcome["oldest_seq"] == head + 1

    # a resyncing client follows live events from the welcome's seq
    ack = await alice.request("contact_updated", {"id": also, "changes": {"company": "Z"}})
    assert ack["seq"] == head + 1
    assert (await bob.events(1))[0]["seq"] == head + 1
    assert (await at_head.events(1))[0]["seq"] == head + 1

    async with server.api("bob") as api:
        base = f"/api/workspaces/{ws}"
        r = await api.get(f"{base}/events", params={"since": 0})
        assert r.status_code == 410 and r.json()["error"]["code"] == "resync_required"
        r = await api.get(f"{base}/events", params={"since": head + 5})
        assert r.status_code == 410 and r.json()["error"]["code"] == "resync_required"
        r = await api.get(f"{base}/events", params={"since": head})
        assert r.status_code == 200
        assert [e["seq"] for e in r.json()["events"]] == [head + 1]

        # the resync: the current state, tombstones included, tells deleted from never-seen
        listed = (await api.get(f"{base}/contacts", params={"include_deleted": "true"})).json()
        by_id = {c["id"]: c for c in listed["contacts"]}
        assert set(by_id) == {kept, gone, also}
        assert by_id[gone]["deleted"] is True and by_id[gone]["deleted_at"]
        assert by_id[gone]["version"] == 2
        assert "deleted" not in by_id[kept] and by_id[also]["company"] == "Z"
        live = (await api.get(f"{base}/contacts")).json()
        assert {c["id"] for c in live["contacts"]} == {kept, also}
        assert (await api.get(f"{base}/contacts/{gone}")).status_code == 404
        tomb = await api.get(f"{base}/contacts/{gone}", params={"include_deleted": "true"})
        assert tomb.status_code == 200 and tomb.json()["deleted"] is True
        never = await api.get(f"{base}/contacts/{'f' * 32}", params={"include_deleted": "true"})
        assert never.status_code == 404


async def test_serve_deletes_what_retention_and_the_ref_ttl_let_go(
        server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    alice = await server.connect(ws, "alice")
    clients.append(alice)
    acks = [await alice.request("contact_created", {"name": f"C{i}"}, ref=f"old-{i}")
            for i in range(3)]
    store = await open_store(server.database_url)  # age two events and a ref, as time would
    try:
        db = store.db  # type: ignore[attr-defined]
        await db.execute("UPDATE events SET created_at = $2 WHERE workspace_id = $1"
                         " AND seq <= 2", ws, LONG_AGO)
        await db.execute("UPDATE mutation_refs SET created_at = $2 WHERE workspace_id = $1"
                         " AND ref = 'old-0'", ws, LONG_AGO)
    finally:
        await store.close()

    async with server.api("bob") as api:
        async def history() -> Any:
            return await api.get(f"/api/workspaces/{ws}/events", params={"since": 0})

        for _ in range(100):  # the periodic cleanup runs every second
            r = await history()
            if r.status_code == 410:
                break
            await asyncio.sleep(0.1)
        assert r.status_code == 410 and r.json()["error"]["details"]["oldest_seq"] == 3
    bob = await server.connect(ws, "bob", since=1)
    kept = await server.connect(ws, "bob", since=2)
    clients += [bob, kept]
    assert bob.welcome["resync_required"] is True and bob.welcome["oldest_seq"] == 3
    assert kept.welcome["replay"] == {"from_seq": 3, "to_seq": 3, "count": 1}
    assert (await kept.events(1))[0]["data"] == acks[2]["data"]

    # a ref older than 24 h is forgotten: the same ref is a new mutation; a recent one is not
    assert await alice.request("contact_created", {"name": "C2"}, ref="old-2") == acks[2]
    again = await alice.request("contact_created", {"name": "C0"}, ref="old-0")
    assert again["seq"] == 4 and again["data"]["id"] != acks[0]["data"]["id"]


async def test_unusable_since_values_require_resync(server: Server) -> None:
    ws = await server.workspace("alice")
    headers = {"Authorization": f"Bearer {server.token('alice')}"}
    for raw in ("abc", "1.5", "-3"):
        url = f"{server.ws}/ws/workspace/{ws}?since={raw}"
        async with websockets.connect(url, additional_headers=headers) as sock:
            welcome = orjson.loads(await sock.recv())
        assert welcome["type"] == "welcome" and welcome["resync_required"] is True, raw
        assert welcome["oldest_seq"] == 1 and welcome["seq"] == 0


# ---- 5. delivery receipts -----------------------------------------------------------------


async def test_acks_advance_the_users_delivery_cursor_monotonically(
        server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    other = await server.workspace("bob")
    alice = await server.connect(ws, "alice", batch=True)
    bob = await server.connect(ws, "bob")
    clients += [alice, bob]
    await write(alice, [("contact_created", {"name": f"R{i}"}) for i in range(10)], prefix="r")
    assert [e["seq"] for e in await bob.events(10)] == list(range(1, 11))

    async def cursor(user: str, workspace: str = ws) -> int:
        async with server.api(user) as api:
            r = await api.get(f"/api/workspaces/{workspace}/events", params={"since": 0})
            assert r.status_code == 200
            value: int = r.json()["cursor"]
            return value

    assert await cursor("bob") == 0
    await bob.send("ack", {"seq": 4})  # no ref: no reply
    assert (await bob.request("ack", {"seq": 7}))["data"] == {"cursor": 7}
    assert (await bob.request("ack", {"seq": 3}))["data"] == {"cursor": 7}  # never back
    assert await cursor("bob") == 7
    assert (await bob.request("ack", {"seq": 999}))["data"] == {"cursor": 10}  # up to head
    assert await cursor("bob") == 10
    assert await cursor("alice") == 0  # per user
    assert await cursor("bob", other) == 0  # and per workspace
    bad = await bob.request("ack", {"seq": "x"})
    assert bad["type"] == "error" and bad["code"] == "validation_failed"

    # the cursor is stored: another connection and a restart see it
    tab = await server.connect(ws, "bob")
    clients.append(tab)
    assert (await tab.request("ack", {"seq": 2}))["data"] == {"cursor": 10}


# ---- 7. a long log streams in bounded memory ----------------------------------------------


LONG = 20_000
BODY = "x" * 600  # about 1 KiB per event: the log is ~20 MiB, the outbox at most 64 KiB


async def test_a_long_log_is_replayed_in_order_through_a_small_outbox(
        server: Server, servers: ServerFactory, clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    writers = [await server.connect(ws, "alice", batch=True) for _ in range(4)]
    clients += writers
    contact = (await writers[0].request("contact_created", {"name": "Long"}))["data"]
    note = ("note_added", {"contact_id": contact["id"], "body": BODY})
    written = await asyncio.gather(*(write(w, [note] * (LONG // 4), prefix=f"long{i}")
                                     for i, w in enumerate(writers)))  # concurrent: faster
    data = {1: contact} | {ack["seq"]: ack["data"] for acks, _ in written for ack in acks}
    head = 1 + LONG
    assert sorted(data) == list(range(1, head + 1))
    for writer in writers:
        await writer.close()

    # a second node on the same database with the smallest outbox the settings allow: a
    # server that buffered the log (or a page of it) instead of waiting for the socket
    # would close the connection with 4009
    small = servers(server.database_url, LIVESPACE_SEND_QUEUE_FRAMES="16",
                    LIVESPACE_SEND_QUEUE_BYTES="65536")
    assert small.proc is not None
    server_rss = psutil.Process(small.proc.pid).memory_info
    rss = [server_rss().rss]
    bob = await small.connect(ws, "bob", since=0)
    clients.append(bob)
    assert bob.welcome["replay"] == {"from_seq": 1, "to_seq": head, "count": head}
    for _ in range(10):  # not reading: the server must wait, not queue or give up
        await asyncio.sleep(0.1)
        rss.append(server_rss().rss)
    seq = log_bytes = 0
    async for frame in frames(bob, timeout=30):
        if frame["type"] not in DURABLE:
            continue
        seq += 1
        log_bytes += len(orjson.dumps(frame))
        assert frame["seq"] == seq and frame["data"] == data[seq]
        if seq % 1000 == 0:
            rss.append(server_rss().rss)
        if seq == head:
            break
    # the server's memory grew by a page of events or so, well under the log's size
    assert max(rss) - rss[0] < log_bytes, (log_bytes, rss)

    # a resume from the middle, batched, and live events after it
    tab = await small.connect(ws, "bob", since=head // 2, batch=True)
    clients.append(tab)
    assert tab.welcome["replay"]["count"] == head - head // 2
    got = await tab.events(head - head // 2, timeout=30)
    assert [e["seq"] for e in got] == list(range(head // 2 + 1, head + 1))
    alice = await small.connect(ws, "alice")
    clients.append(alice)
    ack = await alice.request("note_added", {"contact_id": contact["id"], "body": "b"})
    assert ack["seq"] == head + 1
    for client in (bob, tab):
        assert (await client.events(1))[0]["seq"] == head + 1
