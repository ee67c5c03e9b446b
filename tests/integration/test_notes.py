"""Collaborative notes over y-websocket: a real server (SQLite and PostgreSQL), pycrdt
clients speaking the protocol with pycrdt's own helpers, the note's REST body and its
``note_updated`` events."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
import websockets
from ydoc import YClient, doc_url

from conftest import Server, ServerFactory
from livespace.notes import ywire
from livespace.store import open_store

pytestmark = pytest.mark.integration


async def make_note(server: Server, owner: str, *members: str, viewers: tuple[str, ...] = (),
                    body: str = "Hello") -> tuple[str, str, str]:
    """A workspace with a contact and a note: (workspace id, contact id, note id)."""
    ws_id = await server.workspace(owner, *members, viewers=viewers)
    async with server.api(owner) as api:
        r = await api.post(f"/api/workspaces/{ws_id}/contacts", json={"name": "Ada"})
        contact_id = r.json()["id"]
        r = await api.post(f"/api/workspaces/{ws_id}/contacts/{contact_id}/notes",
                           json={"body": body})
        assert r.status_code == 201, r.text
        return ws_id, contact_id, r.json()["id"]


async def note_body(server: Server, user: str, ws_id: str, contact_id: str,
                    note_id: str) -> dict[str, Any]:
    async with server.api(user) as api:
        r = await api.get(f"/api/workspaces/{ws_id}/contacts/{contact_id}/notes")
        assert r.status_code == 200, r.text
        return next(n for n in r.json()["notes"] if n["id"] == note_id)


async def wait_body(server: Server, user: str, ws_id: str, contact_id: str, note_id: str,
                    expected: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        note = await note_body(server, user, ws_id, contact_id, note_id)
        if note["body"] == expected:
            return note
        if time.monotonic() > deadline:
            raise AssertionError(f"body is {note['body']!r}, expected {expected!r}")
        await asyncio.sleep(0.1)


async def client(server: Server, ws_id: str, note_id: str, user: str) -> YClient:
    yc = YClient(doc_url(server.ws, ws_id, note_id, server.token(user)))
    await yc.connect()
    await asyncio.wait_for(yc.synced.wait(), 20)
    return yc


async def test_two_clients_converge_and_the_body_follows(server: Server) -> None:
    ws_id, contact_id, note_id = await make_note(server, "alice", "bob", body="Hello")
    watcher = await server.connect(ws_id, "bob")  # a workspace socket sees the body live
    a = await client(server, ws_id, note_id, "alice")
    b = await client(server, ws_id, note_id, "bob")
    try:
        assert str(a.text) == "Hello"  # a note starts with its body as the text
        a.text.insert(5, " world")
        await b.wait_text("Hello world")
        b.text.insert(0, ">> ")
        await a.wait_text(">> Hello world")
        note = await wait_body(server, "alice", ws_id, contact_id, note_id, ">> Hello world")
        assert note["version"] >= 2
        live = await watcher.next(where=lambda f: f.get("type") == "note_updated"
                                  and f["data"]["body"] == ">> Hello world", timeout=20)
        assert live["data"]["id"] == note_id and live["data"]["version"] == note["version"]
    finally:
        await a.disconnect()
        await b.disconnect()
        await watcher.close()
    events = [e for e in await server.events("alice", ws_id) if e["type"] == "note_updated"]
    assert events and events[-1]["data"]["body"] == ">> Hello world"
    assert events[-1]["data"]["version"] == note["version"]
    # at most one a second per note
    stamps = [e["ts"] for e in events]
    assert len(stamps) == len(set(stamps))


async def test_refusals(server: Server) -> None:
    ws_id, _, note_id = await make_note(server, "alice")
    other_ws, _, other_note = await make_note(server, "carol")

    async def code(url: str, **kw: Any) -> int | None:
        async with websockets.connect(url, **kw) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return ws.close_code

    base = f"{server.ws}/ws/workspace/{ws_id}/notes"
    assert await code(f"{base}/{note_id}/doc") == 4001
    assert await code(f"{base}/{note_id}/doc?token=nope") == 4001
    assert await code(doc_url(server.ws, ws_id, note_id, server.token("mallory"))) == 4003
    assert await code(doc_url(server.ws, ws_id, "no-such-note", server.token("alice"))) == 4003
    # another workspace's note, through this workspace
    assert await code(doc_url(server.ws, ws_id, other_note, server.token("alice"))) == 4003
    assert await code(doc_url(server.ws, other_ws, note_id, server.token("carol"))) == 4003
    # the Authorization header and the bearer subprotocol work like on the workspace socket
    token = server.token("alice")
    async with websockets.connect(f"{base}/{note_id}/doc",
                                  additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert (await asyncio.wait_for(ws.recv(), 10))[:2] == b"\x00\x00"  # sync step 1
    async with websockets.connect(f"{base}/{note_id}", subprotocols=[
            "livespace.v1", f"bearer.{token}"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "livespace.v1"
        assert (await asyncio.wait_for(ws.recv(), 10))[:2] == b"\x00\x00"


async def first_message(ws: Any) -> bytes:
    message = await asyncio.wait_for(ws.recv(), 10)
    assert isinstance(message, bytes)
    return message


async def closed_with(ws: Any) -> int | None:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    code: int | None = ws.close_code
    return code


async def test_bad_input_closes_that_socket_only(server: Server) -> None:
    ws_id, _, note_id = await make_note(server, "alice", "bob", body="Hello")
    good = await client(server, ws_id, note_id, "bob")
    url = doc_url(server.ws, ws_id, note_id, server.token("alice"))
    big_state = b'{"user":{"name":"x"},"pad":"' + b"x" * 5000 + b'"}'
    cases: list[tuple[bytes | str, int]] = [
        (b"\x09", 1007),  # unknown message type
        (b"\x00\x02\x05ab", 1007),  # length past the end
        (ywire.sync_update(b"\xff\xff\xff"), 1007),  # not a Yjs update
        (ywire.sync_step1(b"\xff\xff\xff\xff"), 1007),  # not a state vector
        ("hello", 1003),  # text frame
        (b"\x00\x02" + b"\x80\x80\x04" + b"\x00" * 70_000, 1009),  # over the frame limit
        (ywire.awareness([ywire.AwarenessEntry(1, 1, big_state.decode())]), 1009),
    ]
    for frame, code in cases:
        async with websockets.connect(url, max_size=None) as ws:
            await first_message(ws)
            await ws.send(frame)
            assert await closed_with(ws) == code, frame[:20]
    good.text.insert(5, "!")  # the neighbour noticed nothing
    other = await client(server, ws_id, note_id, "alice")
    await other.wait_text("Hello!")
    await good.disconnect()
    await other.disconnect()


async def test_viewers_read_but_do_not_write(server: Server) -> None:
    ws_id, contact_id, note_id = await make_note(server, "alice", viewers=("vera",),
                                                 body="Hello")
    vera = await client(server, ws_id, note_id, "vera")
    alice = await client(server, ws_id, note_id, "alice")
    try:
        vera.text.insert(0, "VERA WAS HERE ")  # sent, not applied
        alice.text.insert(5, " world")
        await vera.wait_text("VERA WAS HERE Hello world")  # she still gets the others'
        await asyncio.sleep(0.5)
        assert str(alice.text) == "Hello world"
        fresh = await client(server, ws_id, note_id, "alice")
        assert str(fresh.text) == "Hello world"
        await fresh.disconnect()
        await wait_body(server, "alice", ws_id, contact_id, note_id, "Hello world")
        assert vera.close_code is None  # not closed for it
    finally:
        await vera.disconnect()
        await alice.disconnect()
    assert "update from viewer vera not applied" in server.logs()


async def test_awareness_is_stamped_and_rate_limited(server: Server) -> None:
    ws_id, _, note_id = await make_note(server, "alice", "bob")
    bob = await client(server, ws_id, note_id, "bob")
    url = doc_url(server.ws, ws_id, note_id, server.token("alice"))
    async with websockets.connect(url) as ws:
        await first_message(ws)
        state = '{"user":{"name":"Not Alice","color":"#ff0000"},"cursor":{"anchor":3}}'
        await ws.send(ywire.awareness([ywire.AwarenessEntry(42, 1, state)]))
        for _ in range(400):
            seen = [m for m in bob.received if m[0] == 1]
            if seen:
                break
            await asyncio.sleep(0.05)
        assert seen, "no awareness message reached bob"
        entries = ywire.decode_awareness(_payload(seen[-1]))
        assert entries[0].client_id == 42 and entries[0].state is not None
        assert '"id":"alice"' in entries[0].state and '"name":"Alice"' in entries[0].state
        assert '"color":"#ff0000"' in entries[0].state and "Not Alice" not in entries[0].state
        # a query is answered with what is known
        await ws.send(ywire.query_awareness())
        # a flood: extra messages are dropped, then the socket is closed with 4008
        for clock in range(2, 400):
            try:
                await ws.send(ywire.awareness([ywire.AwarenessEntry(42, clock, state)]))
            except websockets.ConnectionClosed:
                break
        assert await closed_with(ws) == 4008
    # its states left with it
    for _ in range(400):
        last = [m for m in bob.received if m[0] == 1][-1]
        if ywire.decode(last) == ywire.AwarenessUpdate(
                (ywire.AwarenessEntry(42, _clock(last), None),)):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("alice's awareness state was not removed")
    await bob.disconnect()


def _payload(frame: bytes) -> bytes:
    decoded = ywire.decode(frame)
    assert isinstance(decoded, ywire.AwarenessUpdate)
    return ywire.awareness_payload(decoded.entries)


def _clock(frame: bytes) -> int:
    decoded = ywire.decode(frame)
    assert isinstance(decoded, ywire.AwarenessUpdate)
    return decoded.entries[0].clock


async def test_live_fuzz(server: Server) -> None:
    """Random and mutated frames against a live note: each bad one closes its own socket
    with a documented code; the note and its other clients are unharmed."""
    ws_id, _, note_id = await make_note(server, "alice", "bob", body="Hello")
    good = await client(server, ws_id, note_id, "bob")
    url = doc_url(server.ws, ws_id, note_id, server.token("alice"))
    rng = random.Random(12)
    seeds = [ywire.sync_update(b"\x00\x00"), ywire.sync_step1(b"\x00"), b"\x03",
             ywire.awareness([ywire.AwarenessEntry(7, 1, '{"a":1}')])]
    codes = set()
    for _ in range(40):
        await asyncio.sleep(0.06)  # under the per-user handshake rate
        async with websockets.connect(url, max_size=None) as ws:
            await first_message(ws)
            for _ in range(25):
                frame = bytearray(rng.choice(seeds))
                for _ in range(rng.randint(0, 4)):
                    op = rng.randint(0, 2)
                    at = rng.randint(0, len(frame))
                    if op == 0:
                        frame[at:at] = bytes([rng.randint(0, 255)])
                    elif op == 1 and frame:
                        del frame[min(at, len(frame) - 1)]
                    elif frame:
                        frame[min(at, len(frame) - 1)] = rng.randint(0, 255)
                try:
                    await ws.send(bytes(frame))
                except websockets.ConnectionClosed:
                    break
            await ws.close()
            codes.add(ws.close_code)
    assert codes <= {1000, 1007, 1009}, codes
    assert 1007 in codes
    good.text.insert(0, ">")
    other = await client(server, ws_id, note_id, "alice")
    await other.wait_text(str(good.text))
    assert str(good.text).endswith("Hello")
    await good.disconnect()
    await other.disconnect()
    assert "Traceback" not in server.logs()


async def test_compaction_bounds_storage_and_a_full_document_is_refused(
        servers: ServerFactory) -> None:
    server = servers(LIVESPACE_NOTE_COMPACT_UPDATES="20", LIVESPACE_NOTE_MAX_BYTES="8192")
    ws_id, _, note_id = await make_note(server, "alice", body="x")
    typist = await client(server, ws_id, note_id, "alice")
    for n in range(200):  # one update per keystroke
        typist.text.insert(len(str(typist.text)), "abcdefghij"[n % 10])
        await asyncio.sleep(0.002)
    expected = "x" + "abcdefghij" * 20
    reader = await client(server, ws_id, note_id, "alice")
    await reader.wait_text(expected)
    store = await open_store(server.database_url)
    try:
        for _ in range(200):  # compactions run beside the writes: wait for them
            kept = await store.note_storage(ws_id, note_id)
            if kept["snapshot_bytes"] > 0 and kept["updates"] <= 40:
                break
            await asyncio.sleep(0.05)
        assert kept["snapshot_bytes"] > 0 and kept["updates"] <= 40, kept
        # one update that would take the document past 8 KiB: that socket is closed
        typist.text.insert(0, "y" * 9000)
        for _ in range(200):
            if typist.close_code is not None:
                break
            await asyncio.sleep(0.05)
        assert typist.close_code == 1009
        await asyncio.sleep(0.3)
        assert str(reader.text) == expected
        assert (await store.note_storage(ws_id, note_id))["update_bytes"] < 8192
    finally:
        await store.close()
        await reader.disconnect()
        await typist.disconnect()
    # after the last client left: one snapshot, nothing else
    fresh = await client(server, ws_id, note_id, "alice")
    assert str(fresh.text) == expected
    await fresh.disconnect()


async def test_membership_changes_reach_note_sockets(server: Server) -> None:
    ws_id, _, note_id = await make_note(server, "alice", "bob", "dan", body="Hello")
    bob = await client(server, ws_id, note_id, "bob")
    dan = await client(server, ws_id, note_id, "dan")
    alice = await client(server, ws_id, note_id, "alice")
    try:
        async with server.api("alice") as api:
            r = await api.delete(f"/api/workspaces/{ws_id}/members/bob")
            assert r.status_code == 204, r.text
            r = await api.put(f"/api/workspaces/{ws_id}/members/dan", json={"role": "viewer"})
            assert r.status_code == 200, r.text
        for _ in range(400):
            if bob.close_code is not None:
                break
            await asyncio.sleep(0.05)
        assert bob.close_code == 4003
        await asyncio.sleep(0.3)
        dan.text.insert(0, "dan: ")  # a viewer now: not applied
        alice.text.insert(5, "!")
        await dan.wait_text("dan: Hello!")
        await asyncio.sleep(0.3)
        assert str(alice.text) == "Hello!"
    finally:
        for c in (bob, dan, alice):
            await c.disconnect()


async def test_the_last_edit_reaches_the_body_after_everyone_left(server: Server) -> None:
    ws_id, contact_id, note_id = await make_note(server, "alice", body="Hello")
    a = await client(server, ws_id, note_id, "alice")
    a.text.insert(5, " one")
    await wait_body(server, "alice", ws_id, contact_id, note_id, "Hello one")
    a.text.insert(9, " two")  # within the second after that note_updated, then gone
    await asyncio.sleep(0.1)
    await a.disconnect()
    note = await wait_body(server, "alice", ws_id, contact_id, note_id, "Hello one two")
    assert note["version"] == 3
