"""Snapshot then live: epochs, lists as one consistent read, stale epochs resyncing,
against a real server on SQLite and PostgreSQL (DESIGN.md sections 1, 3, 4; issue 8)."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import orjson
import pytest

from conftest import LIVESPACE, Server, ServerFactory
from livespace.client import DURABLE, Client

pytestmark = pytest.mark.integration

FAST = {"LIVESPACE_RATE_LIMIT": "100000", "LIVESPACE_USER_RATE_LIMIT": "100000",
        "LIVESPACE_HTTP_RATE_LIMIT": "100000"}


@pytest.fixture(scope="module")
def server(servers: ServerFactory) -> Server:
    return servers(**FAST)


async def _contacts(server: Server, user: str, ws: str) -> dict[str, Any]:
    async with server.api(user) as api:
        r = await api.get(f"/api/workspaces/{ws}/contacts", params={"limit": 1000})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


async def test_welcome_lists_and_history_name_one_epoch(server: Server,
                                                        clients: list[Client]) -> None:
    ws = await server.workspace("alice")
    alice = await server.connect(ws, "alice")
    clients.append(alice)
    ack = await alice.request("contact_created", {"name": "Ada"})
    note = await alice.request("note_added", {"contact_id": ack["data"]["id"], "body": "hi"})
    epoch = alice.welcome["epoch"]
    assert isinstance(epoch, str) and epoch
    listed = await _contacts(server, "alice", ws)
    assert (listed["seq"], listed["epoch"]) == (note["seq"], epoch)
    async with server.api("alice") as api:
        notes = (await api.get(f"/api/workspaces/{ws}/contacts/{ack['data']['id']}/notes")).json()
        history = (await api.get(f"/api/workspaces/{ws}/events", params={"since": 0})).json()
    assert (notes["seq"], notes["epoch"]) == (2, epoch)
    assert history["epoch"] == epoch and history["head_seq"] == 2
    # another workspace is another log
    other = await server.workspace("alice")
    assert (await _contacts(server, "alice", other))["epoch"] != epoch


async def test_a_stale_epoch_resumes_into_resync(server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice")
    alice = await server.connect(ws, "alice")
    clients.append(alice)
    await alice.request("contact_created", {"name": "Ada"})
    epoch = alice.welcome["epoch"]
    same = await server.connect(ws, "alice", since=0, epoch=epoch)
    clients.append(same)
    assert same.welcome["replay"]["count"] == 1 and same.welcome["epoch"] == epoch
    stale = await server.connect(ws, "alice", since=1, epoch="not-this-one")
    clients.append(stale)
    assert stale.welcome["resync_required"] is True and "replay" not in stale.welcome
    assert stale.welcome["oldest_seq"] == 1 and stale.welcome["epoch"] == epoch
    async with server.api("alice") as api:
        r = await api.get(f"/api/workspaces/{ws}/events",
                          params={"since": 0, "epoch": "not-this-one"})
        assert r.status_code == 410 and r.json()["error"]["code"] == "resync_required"
        assert r.json()["error"]["details"]["epoch"] == epoch
        r = await api.get(f"/api/workspaces/{ws}/events", params={"since": 0, "epoch": epoch})
        assert r.status_code == 200 and len(r.json()["events"]) == 1


async def test_epoch_renew_after_a_restore(server: Server, clients: list[Client]) -> None:
    """The operator's command for a log restored behind the servers' back."""
    ws = await server.workspace("alice")
    before = (await _contacts(server, "alice", ws))["epoch"]
    done = subprocess.run([LIVESPACE, "epoch", "renew", "--workspace", ws], env=server.env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {"workspaces_renewed": 1}
    after = (await _contacts(server, "alice", ws))["epoch"]
    assert after != before
    old = await server.connect(ws, "alice", since=0, epoch=before)
    clients.append(old)
    assert old.welcome["resync_required"] is True and old.welcome["epoch"] == after


async def test_snapshot_then_live_under_concurrent_writers(server: Server,
                                                           clients: list[Client]) -> None:
    """A list then ``since=seq``: each contact's first live event after the list has
    ``version`` = listed + 1, and the seqs go on from the list's with no gap."""
    ws = await server.workspace("alice", "bob")
    writer = await server.connect(ws, "alice", batch=True)
    clients.append(writer)
    ids = [(await writer.request("contact_created", {"name": f"c{i}"}))["data"]["id"]
           for i in range(20)]
    stop = asyncio.Event()

    async def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            batch = [{"type": "contact_updated", "ref": f"u{n}-{i}",
                      "data": {"id": cid, "changes": {"company": f"v{n}"}}}
                     for i, cid in enumerate(ids[n % 4::4])]
            await writer.send_raw(orjson.dumps(batch).decode())
            await asyncio.sleep(0.005)
            writer.inbox.clear()

    writing = asyncio.create_task(write())
    try:
        for _ in range(3):
            await asyncio.sleep(0.2)
            listed = await _contacts(server, "bob", ws)
            versions = {c["id"]: c["version"] for c in listed["contacts"]}
            bob = await server.connect(ws, "bob", since=listed["seq"], epoch=listed["epoch"])
            clients.append(bob)
            assert "resync_required" not in bob.welcome
            seq, first = listed["seq"], dict[str, int]()
            while len(first) < len(ids):
                event = await bob.next(where=lambda f: f.get("type") in DURABLE, timeout=20)
                assert event["seq"] == seq + 1
                seq = event["seq"]
                first.setdefault(event["data"]["id"], event["data"]["version"])
            assert first == {cid: versions[cid] + 1 for cid in ids}
            await bob.close()
    finally:
        stop.set()
        await writing
