"""Session, the state machine of one connection, fed frames directly (no socket).

As websockets tests its protocol: frames go in through ``Session.handle``; what the
session queued comes out of the connection's transport, a list here. Behind it a real
node on SQLite with the in-process broker and presence.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from inprocess import settings_for

from livespace.codes import Close
from livespace.commands import CreateContact
from livespace.connection import Connection
from livespace.node import Node
from livespace.session import Session
from livespace.store import Actor

Frame = dict[str, Any]
WAIT_S = 5.0  # generous: the machine may be loaded; no test waits this long when it passes


@dataclass
class Wire:
    """The connection's :class:`livespace.wire.Wire`: what the session queued, in the
    order it went out (one JSON text per message, as with compression on)."""

    frames: list[Frame] = field(default_factory=list)
    closed: int | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    plain = False
    writable = True

    @property
    def gone(self) -> bool:
        return self.closed is not None

    def write(self, data: bytes) -> None:
        raise AssertionError("not plain: frames come through write_text")

    def write_text(self, payload: bytes) -> None:
        sent = orjson.loads(payload)
        self.frames.extend(sent if isinstance(sent, list) else [sent])
        self.changed.set()

    def close(self, code: int, reason: str = "") -> None:
        self.closed = code
        self.changed.set()

    def abort(self) -> bool:
        return False

    async def drained(self) -> None:
        return None

    async def until(self, done: Callable[[list[Frame]], bool]) -> list[Frame]:
        async with asyncio.timeout(WAIT_S):
            while not done(self.frames):
                self.changed.clear()
                await self.changed.wait()
        return self.frames

    async def next(self, type_: str, **match: Any) -> Frame:
        """The first frame of ``type_`` (with ``match``) not taken yet."""
        def found(frames: list[Frame]) -> bool:
            return any(f.get("type") == type_ and match.items() <= f.items() for f in frames)

        await self.until(found)
        frame = next(f for f in self.frames if f.get("type") == type_
                     and match.items() <= f.items())
        self.frames.remove(frame)
        return frame


@dataclass
class Peer:
    session: Session
    conn: Connection
    wire: Wire

    async def send(self, type_: str, data: Any = None, ref: str | None = None) -> None:
        frame: Frame = {"type": type_}
        if data is not None:
            frame["data"] = data
        if ref is not None:
            frame["ref"] = ref
        await self.session.handle(orjson.dumps(frame).decode())

    def replies(self) -> list[Frame]:
        return [f for f in self.wire.frames if f.get("type") in ("ack", "error", "pong")]


class World:
    """A node and the sessions a test opens on it (closed after the test)."""

    def __init__(self, node: Node, workspace_id: str) -> None:
        self.node = node
        self.ws = workspace_id
        self.peers: list[Peer] = []

    async def open(self, user: str, role: str = "member", *, since: int | None = None,
                   batch: bool = False, exp_in: float | None = None) -> Peer:
        principal = await self.node.verifier.verify(self.node.verifier.mint(
            user, name=user.title(), ttl_s=exp_in if exp_in is not None else 3600))
        wire = Wire()
        conn = Connection(workspace_id=self.ws, principal=principal, role=role,
                          wire=wire, node=self.node.settings.node_id, batch=batch,
                          flusher=self.node.hub.flusher)
        session = Session(self.node, conn)
        await session.open(since)
        peer = Peer(session, conn, wire)
        self.peers.append(peer)
        return peer

    async def close(self, peer: Peer) -> None:
        self.peers.remove(peer)
        await peer.session.close()


@contextlib.asynccontextmanager
async def world_with(tmp_path: Path, **settings: Any) -> AsyncIterator[World]:
    node = await Node.start(settings_for(tmp_path, **settings))
    workspace = await node.store.create_workspace("Acme", "alice")
    world = World(node, workspace.id)
    try:
        yield world
    finally:
        for peer in list(world.peers):
            await world.close(peer)
        await node.stop()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with world_with(tmp_path, typing_timeout_s=0.3) as made:
        yield made


async def test_welcome_comes_first_with_who_is_online(world: World) -> None:
    bob = await world.open("bob")
    alice = await world.open("alice", "owner")
    welcome = (await alice.wire.until(lambda f: len(f) >= 1))[0]
    assert welcome["type"] == "welcome" and welcome["workspace_id"] == world.ws
    assert welcome["user"] == {"id": "alice", "email": None, "name": "Alice", "role": "owner"}
    assert welcome["seq"] == 0 and welcome["heartbeat_s"] > 0
    assert {u["id"] for u in welcome["presence"]} == {"alice", "bob"}
    joined = await bob.wire.next("presence", event="join")
    assert joined["user"]["id"] == "alice"


async def test_pipelined_mutations_are_acked_in_frame_order_with_increasing_seqs(
    world: World,
) -> None:
    alice = await world.open("alice", "owner")
    await alice.send("contact_created", {"name": "Ada"}, "m1")
    await alice.send("ping", ref="p1")
    await alice.send("contact_created", {"name": ""}, "m2")  # invalid: answered at once
    await alice.send("contact_created", {"name": "Grace"}, "m3")
    await alice.send("nonsense", ref="p2")
    await alice.wire.until(lambda f: len(alice.replies()) >= 5)
    replies = alice.replies()
    assert [(r["type"], r.get("ref")) for r in replies] == [
        ("ack", "m1"), ("pong", "p1"), ("error", "m2"), ("ack", "m3"), ("error", "p2")]
    assert [replies[0]["seq"], replies[3]["seq"]] == [1, 2]
    assert replies[2]["code"] == "validation_failed" and replies[4]["code"] == "unknown_type"
    assert (await alice.wire.next("contact_created"))["seq"] == 1  # the sender's event too


async def test_a_viewer_may_not_mutate_and_bad_frames_keep_the_connection(world: World) -> None:
    vera = await world.open("vera", "viewer")
    await vera.send("contact_created", {"name": "x"}, "v1")
    await vera.session.handle("{not json")
    await vera.session.handle(b"\x00\x01", binary=True)
    await vera.wire.until(lambda f: len(vera.replies()) >= 3)
    assert [r.get("code") for r in vera.replies()] == [
        "forbidden", "invalid_json", "invalid_message"]
    assert vera.conn.close_code is None
    assert await world.node.store.head_seq(world.ws) == 0


async def test_resume_replays_what_was_missed_then_goes_live(world: World) -> None:
    for i in range(3):
        await world.node.store.apply(world.ws, Actor("alice"), CreateContact(f"c{i}"), None)
    bob = await world.open("bob", since=1)
    welcome = await bob.wire.next("welcome")
    assert welcome["seq"] == 3 and welcome["replay"]["from_seq"] == 2
    alice = await world.open("alice", "owner")
    await alice.send("contact_created", {"name": "live"}, "a1")
    await bob.wire.until(lambda f: len([e for e in f if "seq" in e]) >= 3)
    assert [e["seq"] for e in bob.wire.frames if e.get("type") == "contact_created"] == [2, 3, 4]


async def test_a_since_outside_the_log_is_told_to_resync(world: World) -> None:
    bob = await world.open("bob", since=7)
    welcome = await bob.wire.next("welcome")
    assert welcome["resync_required"] is True and welcome["oldest_seq"] == 1


async def test_typing_reaches_the_others_and_expires(world: World) -> None:
    alice = await world.open("alice", "owner")
    bob = await world.open("bob")
    await alice.send("typing", {"contact_id": "c1"})
    started = await bob.wire.next("typing", is_typing=True)
    assert started == {"type": "typing", "user_id": "alice", "contact_id": "c1",
                       "is_typing": True}
    stopped = await bob.wire.next("typing", is_typing=False)  # after typing_timeout_s
    assert stopped["user_id"] == "alice"
    assert not [f for f in alice.wire.frames if f.get("type") == "typing"]  # not to oneself


async def test_presence_updates_and_the_last_leave(world: World) -> None:
    alice = await world.open("alice", "owner")
    bob = await world.open("bob")
    await bob.send("presence_update", {"status": "busy", "viewing": "c9"}, "u1")
    assert (await bob.wire.next("ack", ref="u1")).get("seq") is None
    update = await alice.wire.next("presence", event="update")
    assert update["user"]["status"] == "busy" and update["user"]["viewing"] == "c9"
    await world.close(bob)
    leave = await alice.wire.next("presence", event="leave")
    assert leave["user"]["id"] == "bob" and leave["user"]["connections"] == 0


async def test_broadcast_goes_to_others_and_to_the_sender_only_with_echo(world: World) -> None:
    alice = await world.open("alice", "owner")
    bob = await world.open("bob")
    await alice.send("broadcast", {"event": "wave", "payload": {"n": 1}}, "b1")
    await alice.send("broadcast", {"event": "wave", "payload": {"n": 2}, "echo": True}, "b2")
    await bob.wire.next("broadcast", payload={"n": 1})
    await bob.wire.next("broadcast", payload={"n": 2})
    echoed = await alice.wire.next("broadcast")
    assert echoed["payload"] == {"n": 2} and echoed["user_id"] == "alice"


async def test_receipts_advance_the_users_cursor_and_never_move_it_back(world: World) -> None:
    await world.node.store.apply(world.ws, Actor("alice"), CreateContact("x"), None)
    bob = await world.open("bob", since=0)
    await bob.wire.next("contact_created")
    await bob.send("ack", {"seq": 1}, "r1")
    assert (await bob.wire.next("ack", ref="r1"))["data"] == {"cursor": 1}
    await bob.send("ack", {"seq": 0}, "r2")
    assert (await bob.wire.next("ack", ref="r2"))["data"] == {"cursor": 1}


async def test_refresh_takes_only_a_valid_token_of_the_same_user(world: World) -> None:
    bob = await world.open("bob")
    verifier = world.node.verifier
    await bob.send("refresh", {"token": "not.a.jwt"}, "t1")
    await bob.send("refresh", {"token": verifier.mint("mallory")}, "t2")
    await bob.send("refresh", {"token": verifier.mint("bob", ttl_s=7200)}, "t3")
    await bob.wire.until(lambda f: len(bob.replies()) >= 3)
    first, second, third = bob.replies()
    assert first["code"] == "validation_failed" and second["code"] == "forbidden"
    assert third["type"] == "ack" and third["data"]["exp"] > 0


async def test_a_token_that_expires_while_connected_closes_4010(world: World) -> None:
    bob = await world.open("bob", exp_in=1)
    await bob.wire.until(lambda f: bob.wire.closed is not None)
    assert bob.wire.closed == Close.TOKEN_EXPIRED


async def test_a_batch_client_gets_a_reply_per_frame_in_order(world: World) -> None:
    alice = await world.open("alice", "owner", batch=True)
    frames = [{"type": "ping", "ref": "a"}, {"type": "contact_created", "ref": "b",
                                               "data": {"name": "x"}}, {"type": "ping"}]
    await alice.session.handle(orjson.dumps(frames).decode())
    await alice.wire.until(lambda f: len(alice.replies()) >= 3)
    assert [(r["type"], r.get("ref")) for r in alice.replies()] == [
        ("pong", "a"), ("ack", "b"), ("pong", None)]


async def test_sustained_flooding_is_refused_then_closed_4008(tmp_path: Path) -> None:
    async with world_with(tmp_path, rate_limit=2.0) as world:
        alice = await world.open("alice", "owner")
        for i in range(40):
            await alice.send("ping", ref=f"p{i}")
        await alice.wire.until(lambda f: world.peers[0].wire.closed is not None)
        limited = [r for r in alice.replies() if r.get("code") == "rate_limited"]
        assert limited and all(0 < r["retry_after"] <= 1 for r in limited)
        assert alice.wire.closed == Close.POLICY
