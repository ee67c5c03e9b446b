"""The Python SDK (``livespace.client.connect``) against a real server on SQLite and
PostgreSQL: snapshot then live, every durable event once and in order across server
restarts and cut sockets, offline mutations applied once, token refresh without a
reconnect, resync on a stale epoch or a retention gap, a dead socket replaced
(DESIGN.md section 7; issue 8)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import livespace.client
from conftest import LIVESPACE, Server, ServerFactory
from livespace.client import Client, LivespaceClient, LivespaceError
from livespace.commands import UpdateContact
from livespace.store import Actor, open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAST = {"LIVESPACE_RATE_LIMIT": "100000", "LIVESPACE_USER_RATE_LIMIT": "100000",
        "LIVESPACE_HTTP_RATE_LIMIT": "100000", "LIVESPACE_HEARTBEAT_S": "1"}
QUICK: dict[str, Any] = {"backoff_s": (0.05, 0.5)}


@pytest.fixture(scope="module")
def server(servers: ServerFactory) -> Server:
    return servers(**FAST)


@pytest.fixture
async def sdk() -> AsyncIterator[list[LivespaceClient]]:
    opened: list[LivespaceClient] = []
    yield opened
    for client in opened:
        await client.close()


async def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def listed(server: Server, ws: str) -> dict[str, dict[str, Any]]:
    async with server.api("alice") as api:
        r = await api.get(f"/api/workspaces/{ws}/contacts", params={"limit": 1000})
    return {c["id"]: c for c in r.json()["contacts"]}


def cli(server: Server, *args: str) -> None:
    done = subprocess.run([LIVESPACE, *args], env=server.env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


async def test_snapshot_then_live_mutations_presence_and_errors(
        server: Server, sdk: list[LivespaceClient], clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    alice = await server.connect(ws, "alice")
    clients.append(alice)
    ada = (await alice.request("contact_created", {"name": "Ada"}))["data"]
    async with livespace.client.connect(server.http, ws, token=server.token("bob")) as bob:
        assert bob.status == "live" and bob.seq == 1 and bob.epoch
        assert bob.contacts[ada["id"]]["name"] == "Ada"
        assert set(bob.presence) == {"alice", "bob"}
        events = bob.events()
        ack = await bob.mutate("contact_created", {"name": "Grace"})
        assert ack["type"] == "ack" and ack["seq"] == 2
        event = await asyncio.wait_for(anext(events), 10)
        assert (event["seq"], event["data"]["name"]) == (2, "Grace")
        assert bob.contacts[ack["data"]["id"]]["name"] == "Grace"
        await alice.request("contact_updated", {"id": ada["id"], "changes": {"company": "AE"}})
        assert (await asyncio.wait_for(anext(events), 10))["seq"] == 3
        assert bob.contacts[ada["id"]]["company"] == "AE"
        with pytest.raises(LivespaceError) as info:
            await bob.mutate("contact_created", {"name": ""})
        assert info.value.code == "validation_failed"
        with pytest.raises(LivespaceError) as info:
            await bob.mutate("contact_updated", {"id": ada["id"], "base_version": 1,
                                                 "changes": {"company": "X"}})
        current = info.value.current
        assert info.value.code == "conflict" and current is not None and current["company"] == "AE"
        await alice.close()
        await until(lambda: set(bob.presence) == {"bob"})
    assert bob.status == "closed"


async def test_every_event_once_in_order_across_restarts_and_cut_sockets(
        servers: ServerFactory, sdk: list[LivespaceClient]) -> None:
    server = servers(**FAST)
    ws = await server.workspace("alice", "bob")
    client = await livespace.client.connect(server.http, ws, token=server.token("bob"), **QUICK)
    sdk.append(client)
    start = client.seq
    events = client.events()
    got: list[int] = []
    total = 150

    async def read() -> None:
        async for event in events:
            got.append(event["seq"])
            if len(got) == total:
                return

    reading = asyncio.create_task(read())
    async with server.api("alice") as api:
        for i in range(total):
            while True:  # the writer retries through the restarts, with its key
                try:
                    r = await api.post(f"/api/workspaces/{ws}/contacts", json={"name": f"c{i}"},
                                       headers={"Idempotency-Key": f"w-{i}"})
                    if r.status_code == 201:
                        break
                except Exception:
                    pass
                await asyncio.sleep(0.1)
            if i == 40:
                server.restart()  # a drain (1012) and a new process
            elif i == 80 and client._ws is not None:
                client._ws.transport.abort()  # the network goes away under the reader
            elif i == 110:
                assert server.proc is not None
                server.proc.kill()  # no drain at all
                server.proc.wait()
                server.proc = None
                server.start()
    await asyncio.wait_for(reading, 60)
    assert got == list(range(start + 1, start + total + 1))
    assert client.connects >= 4 and client.status == "live"
    assert client.contacts == await listed(server, ws)


async def test_offline_mutations_are_applied_once_after_reconnect(
        servers: ServerFactory, sdk: list[LivespaceClient]) -> None:
    server = servers(**FAST)
    ws = await server.workspace("alice", "bob")
    client = await livespace.client.connect(server.http, ws, token=server.token("bob"), **QUICK)
    sdk.append(client)
    server.stop()
    await until(lambda: client.status != "live")
    pending = [asyncio.create_task(client.mutate("contact_created", {"name": f"offline {i}"}))
               for i in range(5)]
    await asyncio.sleep(0.3)
    assert not any(task.done() for task in pending)
    server.start()
    acks = await asyncio.wait_for(asyncio.gather(*pending), 30)
    assert [a["seq"] for a in acks] == [1, 2, 3, 4, 5]
    # sent, then the socket cut before the ack can arrive: sent again with its ref
    assert client._ws is not None
    again = asyncio.create_task(client.mutate("contact_created", {"name": "cut"}))
    await asyncio.sleep(0)
    client._ws.transport.abort()
    assert (await asyncio.wait_for(again, 30))["seq"] == 6
    log = await server.events("alice", ws)
    assert [e["data"]["name"] for e in log] == [f"offline {i}" for i in range(5)] + ["cut"]
    await until(lambda: len(client.contacts) == 6)


async def test_a_token_about_to_expire_is_refreshed_without_a_reconnect(
        server: Server, sdk: list[LivespaceClient]) -> None:
    ws = await server.workspace("alice", "bob")
    minted = 0

    def provider() -> str:
        nonlocal minted
        minted += 1
        return server.token("bob", ttl=3)

    client = await livespace.client.connect(server.http, ws, token_provider=provider,
                                            refresh_margin_s=1.5)
    sdk.append(client)
    await asyncio.sleep(5)  # past the first token's expiry
    assert minted >= 2 and client.connects == 1 and client.status == "live"
    async with server.api("alice") as api:
        await api.post(f"/api/workspaces/{ws}/contacts", json={"name": "still here"})
    await until(lambda: len(client.contacts) == 1)
    assert client.connects == 1


async def test_stale_epoch_and_retention_gap_reload_the_snapshot(
        servers: ServerFactory, sdk: list[LivespaceClient]) -> None:
    server = servers(**FAST)
    ws = await server.workspace("alice", "bob")
    async with server.api("alice") as api:
        cid = (await api.post(f"/api/workspaces/{ws}/contacts", json={"name": "A"})).json()["id"]
    client = await livespace.client.connect(server.http, ws, token=server.token("bob"), **QUICK)
    sdk.append(client)
    assert client.snapshots == 1
    for loads, action in ((2, ("epoch", "renew")), (3, ("cleanup", "--retention-days", "0"))):
        server.stop()
        await until(lambda: client.status != "live")
        # while the client is away: a change it does not see live, then the operator's
        # restore marker or a cleanup that deletes what it missed
        store = await open_store(server.database_url)
        await store.apply(ws, Actor("alice"), UpdateContact(cid, {"company": action[0]}), None)
        await store.close()
        cli(server, *action)
        server.start()
        await until(lambda: client.snapshots == loads and client.status == "live")  # noqa: B023
        assert client.contacts[cid]["company"] == action[0]
        assert client.contacts == await listed(server, ws)


async def test_a_dead_socket_is_replaced(servers: ServerFactory,
                                         sdk: list[LivespaceClient]) -> None:
    server = servers(**FAST)  # heartbeat 1 s: dead after 2 s without a frame
    ws = await server.workspace("alice", "bob")
    client = await livespace.client.connect(server.http, ws, token=server.token("bob"), **QUICK)
    sdk.append(client)
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        await until(lambda: client.status != "live", timeout=10)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    await until(lambda: client.status == "live", timeout=30)
    assert client.connects >= 2
    async with server.api("alice") as api:
        await api.post(f"/api/workspaces/{ws}/contacts", json={"name": "after"})
    await until(lambda: len(client.contacts) == 1)


async def test_far_behind_it_catches_up_compacted(servers: ServerFactory,
                                                  sdk: list[LivespaceClient]) -> None:
    server = servers(**FAST)
    ws = await server.workspace("alice", "bob")
    async with server.api("alice") as api:
        cid = (await api.post(f"/api/workspaces/{ws}/contacts", json={"name": "A"})).json()["id"]
    client = await livespace.client.connect(server.http, ws, token=server.token("bob"),
                                            compact_after=10, **QUICK)
    sdk.append(client)
    events = client.events()
    server.stop()
    await until(lambda: client.status != "live")
    store = await open_store(server.database_url)
    for i in range(30):
        await store.apply(ws, Actor("alice"), UpdateContact(cid, {"company": f"v{i}"}), None)
    await store.close()
    server.start()
    only = await asyncio.wait_for(anext(events), 30)
    assert (only["seq"], only["data"]["company"]) == (31, "v29")
    await until(lambda: client.status == "live" and client.seq == 31)
    assert client.contacts[cid]["version"] == 31 and client.snapshots == 1
