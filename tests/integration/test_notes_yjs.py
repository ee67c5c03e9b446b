"""Done-when of collaborative notes: two real Yjs clients (yjs + y-websocket from npm, in
Node) and a pycrdt client edit one note at once, one of them offline, across a restart
of the server and across two nodes (PostgreSQL + Redis): all converge to the same text,
and so does the note's body in the notes table."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_notes import make_note, wait_body
from ydoc import YClient, doc_url
from yjs_node import NodeYClient

from conftest import Server, ServerFactory
from services import REDIS_TEST_URL

pytestmark = pytest.mark.integration


async def converged(*texts: object, timeout: float = 20.0) -> str:
    """Wait until every client (NodeYClient or YClient) shows the same text; return it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        seen = [await t.text() if isinstance(t, NodeYClient) else str(t.text)  # type: ignore[attr-defined]
                for t in texts]
        if len(set(seen)) == 1:
            return seen[0]
        assert asyncio.get_running_loop().time() < deadline, f"diverged: {seen}"
        await asyncio.sleep(0.1)


@pytest.fixture
def restartable(servers: ServerFactory) -> Server:
    return servers()


async def test_offline_edits_and_a_restart_converge(restartable: Server) -> None:
    server = restartable
    ws_id, contact_id, note_id = await make_note(server, "alice", "bob", "carol", body="Hello")
    a = await NodeYClient.start(server.ws, ws_id, note_id, server.token("alice"), "Alice")
    b = await NodeYClient.start(server.ws, ws_id, note_id, server.token("bob"), "Bob")
    p = await YClient(doc_url(server.ws, ws_id, note_id, server.token("carol"))).connect()
    try:
        await a.wait_synced()
        await b.wait_synced()
        await asyncio.wait_for(p.synced.wait(), 20)
        assert await converged(a, b, p) == "Hello"

        await b.call("disconnect")  # bob goes offline and keeps writing
        await a.call("insert", index=5, text=" from Alice")
        await b.call("insert", index=0, text="[Bob offline] ")
        p.text.insert(len(str(p.text)), " +Carol")
        await a.wait_text("Hello from Alice +Carol")

        await p.disconnect()
        server.restart()  # every update the others saw is stored: nothing is lost
        p.text.insert(0, ">")  # carol writes while the server is down
        await p.connect()
        await asyncio.wait_for(p.synced.wait(), 30)
        await a.call("insert", index=0, text="A:")
        await b.call("connect")
        await b.wait_synced(30)

        text = await converged(a, b, p, timeout=30)
        for part in ("Hello", " from Alice", "[Bob offline] ", " +Carol", ">", "A:"):
            assert part in text
        await wait_body(server, "alice", ws_id, contact_id, note_id, text)

        # and the same again after another restart, from the store alone
        await p.disconnect()
        server.restart()
        fresh = await YClient(doc_url(server.ws, ws_id, note_id, server.token("carol"))).connect()
        await asyncio.wait_for(fresh.synced.wait(), 20)
        assert str(fresh.text) == text
        await fresh.disconnect()
    finally:
        await a.close()
        await b.close()
        await p.disconnect()


@pytest.fixture
def two_nodes(tmp_path: Path, pg_server: str, redis_prefix: str) -> Iterator[list[Server]]:
    factory = ServerFactory("postgres", tmp_path, pg_server)
    database = factory.database()
    env = {"REDIS_URL": REDIS_TEST_URL, "LIVESPACE_REDIS_PREFIX": redis_prefix,
           "JWT_SECRET": uuid.uuid4().hex * 2, "LIVESPACE_HTTP_RATE_LIMIT": "1000"}
    try:
        nodes = [factory(database, **env) for _ in range(2)]
        for node in nodes:
            node.secret = env["JWT_SECRET"]
        yield nodes
    finally:
        factory.close()


def documents(server: Server) -> int:
    return int(httpx.get(f"{server.http}/ws/health", timeout=5).json()["note_documents"])


async def test_two_nodes(two_nodes: list[Server]) -> None:
    one, two = two_nodes
    ws_id, contact_id, note_id = await make_note(one, "alice", "bob", "carol", body="Hello")
    a = await NodeYClient.start(one.ws, ws_id, note_id, one.token("alice"), "Alice")
    try:
        await a.wait_synced()
        await a.call("insert", index=5, text=" one")
        await a.wait_text("Hello one")
        assert documents(one) == 1 and documents(two) == 0  # no client there: no work
        b = await NodeYClient.start(two.ws, ws_id, note_id, two.token("bob"), "Bob")
        p = await YClient(doc_url(two.ws, ws_id, note_id, two.token("carol"))).connect()
        try:
            await b.wait_synced()
            await asyncio.wait_for(p.synced.wait(), 20)
            assert documents(two) == 1
            await b.call("insert", index=0, text="two:")
            p.text.insert(len(str(p.text)), "!")
            await a.call("insert", index=0, text="1:")
            text = await converged(a, b, p)
            for part in ("Hello one", "two:", "!", "1:"):
                assert part in text
            # the cursor of a client on one node reaches the others on the other node
            await a.call("cursor", index=2)
            for _ in range(300):
                peers = (await b.call("peers"))["peers"]
                if any(peer.get("cursor") for peer in peers):
                    break
                await asyncio.sleep(0.1)
            alice = next(peer for peer in peers if peer.get("cursor"))
            assert alice["user"]["id"] == "alice" and alice["user"]["name"] == "Alice"
            await wait_body(two, "bob", ws_id, contact_id, note_id, text)
        finally:
            await b.close()
            await p.disconnect()
    finally:
        await a.close()
    for _ in range(300):
        if documents(one) == documents(two) == 0:
            break
        await asyncio.sleep(0.1)
    assert documents(one) == documents(two) == 0
