"""The workspace gateway as a user meets it: real server, real sockets, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import websockets

from conftest import SQLITE_ONLY, Server, ServerFactory
from livespace.client import Client, Refused

pytestmark = pytest.mark.integration



def answering(ref: str) -> Callable[[dict[str, Any]], bool]:
    """A ``Client.next`` filter: the reply to the frame sent with ``ref``."""
    return lambda frame: frame.get("ref") == ref

async def test_contact_change_reaches_every_member_in_seq_order(
    server: Server, clients: list[Client]
) -> None:
    ws = await server.workspace("alice", "bob")
    alice = await server.connect(ws, "alice")
    bob = await server.connect(ws, "bob")
    clients += [alice, bob]
    assert alice.welcome["workspace_id"] == ws
    assert alice.welcome["user"] == {"id": "alice", "email": "alice@example.com",
                                     "name": "Alice", "role": "owner"}
    assert alice.welcome["seq"] == 0 and alice.welcome["heartbeat_s"] > 0
    assert {u["id"] for u in bob.welcome["presence"]} == {"alice", "bob"}
    joined = await alice.next("presence")
    assert joined["event"] == "join" and joined["user"]["id"] == "bob"

    ack = await bob.request("contact_created", {"name": "Ada Lovelace", "email": "ada@x.org",
                                                "tags": ["vip"], "fields": {"score": 3}})
    assert ack["type"] == "ack" and ack["seq"] == 1
    contact = ack["data"]
    assert contact["name"] == "Ada Lovelace" and contact["version"] == 1 and contact["id"]
    for client in (alice, bob):
        event = await client.next("contact_created")
        assert event["seq"] == 1 and event["workspace_id"] == ws
        assert event["actor"] == {"id": "bob", "name": "Bob"}
        assert event["data"] == contact and event["ts"].endswith("Z") and event["event_id"]

    # pipelined mutations: seqs and acks in send order
    refs = [f"p{i}" for i in range(20)]
    for i, ref in enumerate(refs):
        await alice.send("note_added", {"contact_id": contact["id"], "body": f"note {i}"}, ref)
    acks = [await alice.next(where=answering(ref)) for ref in refs]
    assert [a["seq"] for a in acks] == list(range(2, 22))
    seen = [e["seq"] for e in await bob.events(20)]
    assert seen == list(range(2, 22))
    assert [a["data"]["body"] for a in acks][:2] == ["note 0", "note 1"]

    await bob.close()
    left = await alice.next("presence")
    assert left["event"] == "leave" and left["user"]["id"] == "bob"


@SQLITE_ONLY
async def test_multi_tab_presence_joins_once_and_leaves_on_last_tab(
    server: Server, clients: list[Client]
) -> None:
    ws = await server.workspace("alice", "bob")
    alice = await server.connect(ws, "alice")
    tab1 = await server.connect(ws, "bob")
    tab2 = await server.connect(ws, "bob")
    clients += [alice, tab1, tab2]
    assert (await alice.next("presence"))["event"] == "join"
    await tab1.close()
    await tab2.request("ping")
    with pytest.raises(TimeoutError):
        await alice.next("presence", timeout=0.5)
    update = await tab2.request("presence_update", {"status": "busy", "viewing": "c1"})
    assert update["type"] == "ack"
    changed = await alice.next("presence")
    assert changed["event"] == "update" and changed["user"]["status"] == "busy"
    assert changed["user"]["viewing"] == "c1"
    async with server.api("alice") as api:
        online = (await api.get(f"/ws/workspace/{ws}/users")).json()
    assert {u["id"]: u["status"] for u in online["users"]} == {"alice": "online", "bob": "busy"}
    await tab2.close()
    left = await alice.next("presence")
    assert left["event"] == "leave" and left["user"]["id"] == "bob"


@SQLITE_ONLY
async def test_token_sources_and_subprotocol(server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice")
    token = server.token("alice")
    for via in ("header", "subprotocol", "query"):
        client = await Client.connect(server.ws, ws, token, via=via)
        clients.append(client)
        assert client.welcome["user"]["id"] == "alice"
        if via == "subprotocol":
            assert client.ws.subprotocol == "livespace.v1"


@SQLITE_ONLY
@pytest.mark.parametrize("case", ["none", "garbage", "wrong_key", "expired", "alg_none",
                                  "no_user", "no_exp"])
async def test_bad_tokens_close_4001_before_any_data(server: Server, case: str) -> None:
    ws = await server.workspace("alice")
    now = int(time.time())
    tokens = {
        "none": None,
        "garbage": "not.a.jwt",
        "wrong_key": server.token("alice", secret="y" * 48),
        "expired": server.token("alice", ttl=-10),
        "alg_none": jwt.encode({"sub": "alice", "exp": now + 60}, "", algorithm="none"),
        "no_user": jwt.encode({"exp": now + 60}, server.secret, algorithm="HS256"),
        "no_exp": jwt.encode({"sub": "alice"}, server.secret, algorithm="HS256"),
    }
    with pytest.raises(Refused) as refused:
        await Client.connect(server.ws, ws, tokens[case])
    assert refused.value.code == 4001


async def test_non_members_and_unknown_workspaces_close_4003(server: Server) -> None:
    ws = await server.workspace("alice")
    for workspace, user in ((ws, "mallory"), ("0" * 32, "alice"), ("bad/../id", "alice")):
        with pytest.raises((Refused, websockets.InvalidStatus)) as refused:
            await server.connect(workspace, user)
        if isinstance(refused.value, Refused):
            assert refused.value.code == 4003


@SQLITE_ONLY
async def test_errors_answer_the_frame_and_keep_the_connection(
    server: Server, clients: list[Client]
) -> None:
    ws = await server.workspace("alice", "bob", viewers=("vera",))
    other = await server.workspace("eve")
    alice = await server.connect(ws, "alice")
    vera = await server.connect(ws, "vera")
    eve = await server.connect(other, "eve")
    clients += [alice, vera, eve]
    foreign = (await eve.request("contact_created", {"name": "Eve's"}))["data"]["id"]

    await alice.send_raw("{not json")
    assert (await alice.next("error"))["code"] == "invalid_json"
    await alice.send_raw('{"type": "ping", "ref": ""}')
    bad_ref = await alice.next("error")
    assert bad_ref["code"] == "invalid_message" and "ref" not in bad_ref
    await alice.send_raw("[1, 2]")
    assert (await alice.next("error"))["code"] == "invalid_message"
    assert (await alice.request("teleport", {}))["code"] == "unknown_type"

    err = await alice.request("contact_created", {"name": ""})
    assert err["code"] == "validation_failed" and err["details"]["field"] == "name"
    err = await alice.request("contact_created", {"name": "x", "shoe_size": 44})
    assert err["code"] == "validation_failed" and "shoe_size" in err["details"]["field"]
    err = await alice.request("note_added", {"contact_id": "x" * 65, "body": "hi"})
    assert err["code"] == "validation_failed"
    err = await alice.request("note_added", {"contact_id": foreign, "body": "hi"})
    assert err["code"] == "not_found"
    err = await alice.request("contact_deleted", {"id": "nope"})
    assert err["code"] == "not_found"
    err = await vera.request("contact_created", {"name": "Viewer's"})
    assert err["code"] == "forbidden"

    created = (await alice.request("contact_created", {"name": "Grace"}))["data"]
    await alice.request("contact_updated", {"id": created["id"], "changes": {"phone": "1"}})
    stale = await alice.request("contact_updated", {"id": created["id"], "base_version": 1,
                                                    "changes": {"phone": "2"}})
    assert stale["code"] == "conflict" and stale["details"]["current"]["phone"] == "1"
    merged = await alice.request("contact_updated", {"id": created["id"], "base_version": 1,
                                                     "changes": {"company": "Navy"}})
    assert merged["type"] == "ack" and merged["data"]["phone"] == "1"
    assert merged["data"]["company"] == "Navy" and merged["data"]["version"] == 3

    pong = await alice.request("ping")
    assert pong["type"] == "pong" and pong["ts"]
    # nothing of workspace B reached workspace A and the other way round
    assert all(f.get("workspace_id") in (None, ws) for f in alice.inbox)
    assert all(f.get("type") != "contact_created" or f["workspace_id"] == other
               for f in eve.inbox)


@SQLITE_ONLY
async def test_frame_over_max_closes_1009(server: Server) -> None:
    ws = await server.workspace("alice")
    alice = await server.connect(ws, "alice")
    await alice.send_raw('{"type":"ping","data":{"x":"' + "a" * (65 * 1024) + '"}}')
    assert await alice.closed() == 1009


@SQLITE_ONLY
async def test_typing_goes_to_others_and_expires(server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    alice = await server.connect(ws, "alice")
    bob1 = await server.connect(ws, "bob")
    bob2 = await server.connect(ws, "bob")
    clients += [alice, bob1, bob2]
    await bob1.send("typing", {"contact_id": "c9", "is_typing": True})
    started = time.monotonic()
    for client in (alice, bob2):
        frame = await client.next("typing")
        assert frame == {"type": "typing", "user_id": "bob", "contact_id": "c9",
                         "is_typing": True}
    stopped = await alice.next("typing", timeout=8)
    assert stopped["is_typing"] is False
    assert 4.0 <= time.monotonic() - started <= 7.5
    await bob1.request("ping")
    assert not [f for f in bob1.inbox if f["type"] == "typing"]


@SQLITE_ONLY
async def test_broadcast_echo_and_payload_limit(server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    alice = await server.connect(ws, "alice")
    bob = await server.connect(ws, "bob")
    clients += [alice, bob]
    await alice.send("broadcast", {"event": "cursor", "payload": {"x": 1}})
    got = await bob.next("broadcast")
    assert got == {"type": "broadcast", "event": "cursor", "payload": {"x": 1},
                   "user_id": "alice"}
    ack = await alice.request("broadcast", {"event": "cursor", "payload": {"x": 2}, "echo": True})
    assert ack["type"] == "ack"
    assert (await alice.next("broadcast"))["payload"] == {"x": 2}
    big = await alice.request("broadcast", {"event": "e", "payload": {"b": "x" * 17000}})
    assert big["code"] == "validation_failed"


async def test_rest_mutations_emit_the_socket_events(server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    bob = await server.connect(ws, "bob")
    clients.append(bob)
    async with server.api("alice") as api:
        r = await api.post(f"/api/workspaces/{ws}/contacts", json={"name": "Linus"},
                           headers={"Idempotency-Key": "k1"})
        assert r.status_code == 201
        contact = r.json()
        again = await api.post(f"/api/workspaces/{ws}/contacts", json={"name": "Linus"},
                               headers={"Idempotency-Key": "k1"})
        assert again.json() == contact
        r = await api.patch(f"/api/workspaces/{ws}/contacts/{contact['id']}",
                            json={"company": "Kernel", "base_version": 1})
        assert r.status_code == 200 and r.json()["version"] == 2
        r = await api.post(f"/api/workspaces/{ws}/contacts/{contact['id']}/notes",
                           json={"body": "met at FOSDEM"})
        assert r.status_code == 201
        notes = (await api.get(f"/api/workspaces/{ws}/contacts/{contact['id']}/notes")).json()
        assert [n["body"] for n in notes["notes"]] == ["met at FOSDEM"]
        r = await api.delete(f"/api/workspaces/{ws}/contacts/{contact['id']}")
        assert r.status_code == 200 and r.json()["seq"] == 4
        assert (await api.get(f"/api/workspaces/{ws}/contacts/{contact['id']}")).status_code == 404
        listed = (await api.get(f"/api/workspaces/{ws}/contacts",
                                params={"include_deleted": "true"})).json()
        assert [c["id"] for c in listed["contacts"]] == [contact["id"]]
    events = await bob.events(4)
    assert [e["type"] for e in events] == ["contact_created", "contact_updated", "note_added",
                                           "contact_deleted"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]


async def test_removed_member_is_disconnected_4003_and_downgrade_applies(
    server: Server, clients: list[Client]
) -> None:
    ws = await server.workspace("alice", "bob", "carol")
    bob = await server.connect(ws, "bob")
    carol = await server.connect(ws, "carol")
    clients.append(carol)
    async with server.api("alice") as api:
        r = await api.put(f"/api/workspaces/{ws}/members/carol", json={"role": "viewer"})
        assert r.status_code == 200
        changed = await carol.next("role_changed")
        assert changed["role"] == "viewer"
        assert (await carol.request("contact_created", {"name": "x"}))["code"] == "forbidden"
        started = time.monotonic()
        assert (await api.delete(f"/api/workspaces/{ws}/members/bob")).status_code == 204
    assert await bob.closed() == 4003
    assert time.monotonic() - started < 1.0


@SQLITE_ONLY
async def test_health_ready_metrics_openapi(server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice")
    clients.append(await server.connect(ws, "alice"))
    async with server.api("alice") as api:
        health = (await api.get("/ws/health")).json()
        assert health["status"] == "healthy" and health["service"] == "websocket"
        assert health["total_connections"] >= 1 and health["total_workspaces"] >= 1
        assert health["timestamp"]
        assert (await api.get("/ws/ready")).json()["ready"] is True
        metrics = (await api.get("/metrics")).text
        assert "livespace_connections " in metrics
        spec = (await api.get("/openapi.json")).json()
        assert "/api/workspaces/{workspace_id}/contacts" in spec["paths"]


@SQLITE_ONLY
async def test_tokens_never_reach_the_log(server: Server, clients: list[Client]) -> None:
    # a user of its own: alice's per-user HTTP budget is spent by the module's other tests
    ws = await server.workspace("tokenlog")
    token = server.token("tokenlog")
    clients.append(await Client.connect(server.ws, ws, token, via="query"))
    await asyncio.sleep(0.2)
    signature = token.rsplit(".", 1)[1]
    assert signature not in server.logs()
    assert "token=" not in server.logs() or "token=***" in server.logs()


@SQLITE_ONLY
async def test_disallowed_origin_is_refused(servers: ServerFactory, clients: list[Client]) -> None:
    server = servers(LIVESPACE_ALLOWED_ORIGINS="https://app.example.com")
    ws = await server.workspace("alice")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await server.connect(ws, "alice", origin="https://evil.example.net")
    assert refused.value.response.status_code == 403
    clients.append(await server.connect(ws, "alice", origin="https://app.example.com"))
    clients.append(await server.connect(ws, "alice"))  # no Origin: not a browser
