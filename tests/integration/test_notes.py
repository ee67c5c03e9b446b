"""Collaborative notes over y-websocket: a real server (SQLite and PostgreSQL), pycrdt
clients speaking the protocol with pycrdt's own helpers, the note's REST body and its
``note_updated`` events."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import websockets
from ydoc import YClient, doc_url

from conftest import Server

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
    finally:
        await a.disconnect()
        await b.disconnect()
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
