"""``GET /api/workspaces/{id}/events/stream``: the log as Server-Sent Events, against a
real server on SQLite and PostgreSQL (DESIGN.md section 4; issue 8)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from conftest import Server, ServerFactory
from livespace.client import Client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(servers: ServerFactory) -> Server:
    return servers(LIVESPACE_HEARTBEAT_S="1", LIVESPACE_HTTP_RATE_LIMIT="100000")


class Stream:
    """An SSE response, read message by message (comments kept as ``{"comment": ...}``)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def message(self, timeout: float = 10.0) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        while True:
            line = await asyncio.wait_for(anext(self.lines), timeout)
            if not line:
                if fields:
                    return fields
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if not name:
                return {"comment": value}
            fields[name] = value

    async def event(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next message with an ``event`` (comments and ``retry`` skipped)."""
        while True:
            msg = await self.message(timeout)
            if "event" in msg:
                msg["frame"] = orjson.loads(msg["data"])
                return msg


@asynccontextmanager
async def stream(server: Server, user: str, ws: str, *, headers: dict[str, str] | None = None,
                 auth: str = "header", **params: Any) -> AsyncIterator[Stream]:
    token = server.token(user)
    if auth == "header":
        headers = {"Authorization": f"Bearer {token}", **(headers or {})}
    else:
        params["token"] = token
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http, http.stream(
            "GET", f"/api/workspaces/{ws}/events/stream", params=params,
            headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


async def test_replay_then_live_with_ids_types_and_heartbeats(
        server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    alice = await server.connect(ws, "alice")
    clients.append(alice)
    ada = (await alice.request("contact_created", {"name": "Ada"}))["data"]
    await alice.request("note_added", {"contact_id": ada["id"], "body": "hello"})
    async with stream(server, "bob", ws, auth="query", since=0) as sse:
        got = [await sse.event() for _ in range(2)]
        assert [(m["id"], m["event"]) for m in got] == [("1", "contact_created"),
                                                        ("2", "note_added")]
        assert got[0]["frame"]["data"]["name"] == "Ada" and got[0]["frame"]["seq"] == 1
        await alice.request("contact_updated", {"id": ada["id"], "changes": {"company": "AE"}})
        live = await sse.event()
        assert (live["id"], live["event"]) == ("3", "contact_updated")
        assert live["frame"]["data"]["company"] == "AE"
        # a comment at least every heartbeat (1 s here) while nothing happens
        assert "comment" in await sse.message(timeout=3)
        # typing and broadcasts are not part of the log
        await alice.send("broadcast", {"event": "cursor", "payload": {}})
        await alice.request("contact_deleted", {"id": ada["id"]})
        assert (await sse.event())["event"] == "contact_deleted"
    assert server.token("bob") not in server.logs()


async def test_last_event_id_resumes_and_compact_compacts(
        server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice")
    alice = await server.connect(ws, "alice")
    clients.append(alice)
    cid = (await alice.request("contact_created", {"name": "Ada"}))["data"]["id"]
    for i in range(5):
        await alice.request("contact_updated", {"id": cid, "changes": {"company": f"v{i}"}})
    async with stream(server, "alice", ws, since=0, headers={"Last-Event-ID": "4"}) as sse:
        assert [(await sse.event())["id"] for _ in range(2)] == ["5", "6"]
    async with stream(server, "alice", ws, since=0, compact=1) as sse:
        only = await sse.event()
        assert (only["id"], only["frame"]["data"]["company"]) == ("6", "v4")
        await alice.request("contact_updated", {"id": cid, "changes": {"company": "live"}})
        assert (await sse.event())["id"] == "7"
    # no since: live only
    async with stream(server, "alice", ws) as sse:
        await alice.request("contact_deleted", {"id": cid})
        assert (await sse.event())["id"] == "8"


async def test_positions_it_cannot_serve_are_resync_required(
        server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice")
    alice = await server.connect(ws, "alice")
    clients.append(alice)
    await alice.request("contact_created", {"name": "Ada"})
    for head, params in ((1, {"since": 99}), (2, {"since": 0, "epoch": "not-this-one"})):
        async with stream(server, "alice", ws, **params) as sse:
            resync = await sse.event()
            assert (resync["event"], resync["id"]) == ("resync_required", str(head))
            assert resync["frame"]["oldest_seq"] == 1 and resync["frame"]["head_seq"] == head
            await alice.request("contact_created", {"name": "Bob"})
            assert (await sse.event())["event"] == "contact_created"


async def test_refusals_and_revocation(server: Server) -> None:
    ws = await server.workspace("alice", "bob")
    path = f"/api/workspaces/{ws}/events/stream"
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
        r = await http.get(path)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        r = await http.get(path, params={"token": server.token("carol")})
        assert r.status_code == 403
        r = await http.get(path, params={"token": server.token("bob", secret="x" * 40)})
        assert r.status_code == 401
    async with stream(server, "bob", ws) as sse:
        async with server.api("alice") as api:
            r = await api.delete(f"/api/workspaces/{ws}/members/bob")
            assert r.status_code in (200, 204), r.text
        with pytest.raises(StopAsyncIteration):
            while True:
                await sse.message(timeout=10)
    # a reader that goes away is detached from its room at once
    async with stream(server, "alice", ws) as sse:
        assert "comment" in await sse.message()
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
        for _ in range(100):
            health = (await http.get("/ws/health")).json()
            if health["total_connections"] == 0:
                break
            await asyncio.sleep(0.1)
        assert health["total_connections"] == 0, health
