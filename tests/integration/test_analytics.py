"""Session rows and workspace stats, checked against traffic the test generates and
counts itself, on a real server over SQLite and PostgreSQL (DESIGN.md section 4)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from conftest import Server, ServerFactory
from livespace.client import DURABLE, Client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(servers: ServerFactory) -> Server:
    """Session counters reach the store every 0.2 s (the default is 5 s)."""
    return servers(LIVESPACE_SESSION_FLUSH_S="0.2")


class Tally:
    """A client whose frames are counted: ``sent`` by it, ``received`` by it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.sent = 0
        self.received = 1  # the welcome, read by connect()
        self.events: list[dict[str, Any]] = []

    async def send(self, type: str, data: dict[str, Any] | None = None,
                   ref: str | None = None) -> None:
        await self.client.send(type, data, ref)
        self.sent += 1

    async def request(self, type: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        ref = f"q{self.sent}"
        await self.send(type, data, ref)
        return await self.expect(where=lambda f: f.get("ref") == ref)

    async def expect(self, type: str | None = None,
                     where: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        frame = await self.client.next(type, where)
        self.received += 1
        if frame["type"] in DURABLE:
            self.events.append(frame)
        return frame

    async def settle(self) -> None:
        """Read everything sent before a ping's pong: after it, the counts are complete."""
        await self.send("ping", ref="settle")
        while True:
            frame = await self.client.next()
            self.received += 1
            if frame["type"] in DURABLE:
                self.events.append(frame)
            if frame["type"] == "pong" and frame.get("ref") == "settle":
                return


async def until(fetch: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool],
                timeout: float = 10.0) -> Any:
    """Poll ``fetch`` until ``ok`` (the flush is periodic); the last value otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if ok(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


def seconds(row: dict[str, Any]) -> float:
    start = datetime.fromisoformat(row["connected_at"])
    return (datetime.fromisoformat(row["disconnected_at"]) - start).total_seconds()


async def add_admin(server: Server, ws: str, owner: str, user: str) -> None:
    async with server.api(owner) as api:
        r = await api.put(f"/api/workspaces/{ws}/members/{user}", json={"role": "admin"})
        assert r.status_code == 200, r.text


async def test_sessions_show_live_counters_then_how_they_ended(server: Server) -> None:
    ws = await server.workspace("olga", "mia", "max")
    mia = Tally(await server.connect(ws, "mia"))
    assert (await mia.request("ping"))["type"] == "pong"
    ack = await mia.request("contact_created", {"name": "Counted"})
    assert ack["type"] == "ack"
    await mia.expect("contact_created")
    assert (await mia.request("presence_update", {"status": "busy"}))["type"] == "ack"
    await mia.send("broadcast", {"event": "cursor", "payload": {"x": 1}})  # nothing back
    await mia.settle()
    assert (mia.sent, mia.received) == (5, 6)

    async def mine(user: str, query: str = "") -> list[dict[str, Any]]:
        async with server.api(user) as api:
            r = await api.get(f"/api/workspaces/{ws}/sessions{query}")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["count"] == len(body["sessions"])
            rows: list[dict[str, Any]] = body["sessions"]
            return rows

    # open: listed as active, with the counters of what happened so far
    rows = await until(lambda: mine("mia", "?active=true"),
                       lambda rows: rows and rows[0]["messages_in"] == mia.sent
                       and rows[0]["messages_out"] == mia.received)
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == mia.client.welcome["session_id"] and row["user_id"] == "mia"
    assert (row["messages_in"], row["messages_out"]) == (mia.sent, mia.received)
    assert row["workspace_id"] == ws and row["node"] == f"test-{server.port}"
    assert row["disconnected_at"] is None and row["close_code"] is None
    assert row["events_delivered"] == 1

    held = time.monotonic()
    await asyncio.sleep(0.3)
    await mia.client.close()
    held = time.monotonic() - held

    # closed: not active any more; how long, how it ended, what went in and out
    rows = await until(lambda: mine("mia"), lambda rows: rows[0]["disconnected_at"])
    row = rows[0]
    assert row["close_code"] == 1000 and row["disconnected_at"] > row["connected_at"]
    assert (row["messages_in"], row["messages_out"]) == (mia.sent, mia.received)
    assert seconds(row) >= held - 0.01
    assert await mine("mia", "?active=true") == []
    assert [r["id"] for r in await mine("mia", "?active=false")] == [row["id"]]

    # a session the server ended: membership revoked while connected
    max_ = await server.connect(ws, "max")
    async with server.api("olga") as api:
        assert (await api.delete(f"/api/workspaces/{ws}/members/max")).status_code == 204
    assert await max_.closed() == 4003
    rows = await until(lambda: mine("olga"),
                       lambda rows: len(rows) == 2 and rows[0]["disconnected_at"])
    assert [(r["user_id"], r["close_code"]) for r in rows] == [("max", 4003), ("mia", 1000)]
    assert rows[0]["messages_in"] == 0 and rows[0]["messages_out"] == 1  # the welcome

    # and one whose socket just dropped
    gone = await server.connect(ws, "olga")
    gone.ws.transport.abort()
    rows = await until(lambda: mine("olga"),
                       lambda rows: len(rows) == 3 and rows[0]["disconnected_at"])
    assert rows[0]["user_id"] == "olga"
    assert rows[0]["close_code"] in (1005, 1006)  # no close frame (uvicorn reports 1005)


async def test_stats_match_the_traffic_and_members_see_their_own(server: Server) -> None:
    ws = await server.workspace("olga", "mia", "max")
    await add_admin(server, ws, "olga", "adam")
    mia = Tally(await server.connect(ws, "mia"))
    max_ = Tally(await server.connect(ws, "max"))
    await mia.expect("presence")  # max joined
    started = time.monotonic()

    made = [(await mia.request("contact_created", {"name": f"M{i}"}))["data"] for i in range(3)]
    other = (await max_.request("contact_created", {"name": "X"}))["data"]
    for i in range(2):
        await mia.request("note_added", {"contact_id": made[0]["id"], "body": f"n{i}"})
    await max_.request("contact_updated", {"id": other["id"], "changes": {"company": "Co"}})
    async with server.api("olga") as api:  # REST traffic makes events, not sessions
        r = await api.delete(f"/api/workspaces/{ws}/contacts/{made[2]['id']}")
        assert r.status_code == 200 and r.json()["seq"] == 8
    for tally in (mia, max_):
        while len(tally.events) < 8:
            await tally.expect(where=lambda f: f.get("type") in DURABLE)
        assert [e["seq"] for e in tally.events] == list(range(1, 9))

    # receipts: mia has processed up to 5, max everything (and says so twice)
    await mia.send("ack", {"seq": 5})
    await max_.send("ack", {"seq": 3})
    assert (await max_.request("ack", {"seq": 8}))["data"] == {"cursor": 8}

    await max_.settle()
    await max_.client.close()
    await mia.expect("presence", where=lambda f: f["event"] == "leave")
    await mia.settle()
    await mia.client.close()
    longest = time.monotonic() - started

    async def get(user: str, what: str) -> Any:
        async with server.api(user) as api:
            r = await api.get(f"/api/workspaces/{ws}/{what}")
            assert r.status_code == 200, r.text
            return r.json()

    stats = await until(lambda: get("olga", "stats"),
                        lambda s: s["sessions"]["total"] == 2 and s["sessions"]["active"] == 0)
    log = await get("olga", "events?since=0")
    assert stats["scope"] == "all"
    assert stats["events_by_type"] == {"contact_created": 4, "note_added": 2,
                                       "contact_updated": 1, "contact_deleted": 1}
    by_day: dict[tuple[str, str], int] = {}
    for event in log["events"]:
        key = (event["ts"][:10], event["type"])
        by_day[key] = by_day.get(key, 0) + 1
    assert stats["events_by_day"] == [{"day": d, "type": t, "count": n}
                                      for (d, t), n in sorted(by_day.items())]
    assert stats["most_active_users"] == [{"user_id": "mia", "events": 5},
                                          {"user_id": "max", "events": 2},
                                          {"user_id": "olga", "events": 1}]
    assert stats["messages"] == {"in": mia.sent + max_.sent,
                                 "out": mia.received + max_.received}
    assert stats["delivery"] == {"delivered": 16, "acked": 13, "rate": 13 / 16}

    rows = (await get("olga", "sessions"))["sessions"]
    assert sorted(r["user_id"] for r in rows) == ["max", "mia"]
    average = sum(seconds(r) for r in rows) / 2
    assert stats["sessions"]["average_duration_s"] == pytest.approx(average, abs=0.01)
    assert 0 < average <= longest + 1.0

    # a member sees the workspace's events but only their own sessions; admins see all
    theirs = await get("mia", "stats")
    assert theirs["scope"] == "mine" and theirs["events_by_type"] == stats["events_by_type"]
    assert theirs["sessions"]["total"] == 1
    assert theirs["messages"] == {"in": mia.sent, "out": mia.received}
    assert theirs["delivery"] == {"delivered": 8, "acked": 5, "rate": 5 / 8}
    assert [r["user_id"] for r in (await get("mia", "sessions"))["sessions"]] == ["mia"]
    assert [r["user_id"] for r in (await get("max", "sessions"))["sessions"]] == ["max"]
    assert len((await get("adam", "sessions"))["sessions"]) == 2
    assert (await get("adam", "stats"))["scope"] == "all"

    # outsiders: a non-member and an unknown workspace look the same
    async with server.api("nina") as api:
        for what in ("stats", "sessions", "sessions?active=true"):
            for workspace in (ws, "0" * 32):
                r = await api.get(f"/api/workspaces/{workspace}/{what}")
                assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
