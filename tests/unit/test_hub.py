"""Room ordering and presence coalescing, without sockets (a real SQLite store, memory broker)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from livespace.auth import Principal
from livespace.broker.memory import MemoryBroker
from livespace.commands import CreateContact
from livespace.connection import Connection, Flusher
from livespace.hub import GAP_WAIT_S, Hub
from livespace.presence_fanout import presence_diff
from livespace.store import Actor, open_store


class Sink:
    """A :class:`livespace.wire.Wire` that keeps the frames written to it, decoded."""

    plain = True
    writable = True
    gone = False

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        while data:  # unmasked server frames, as wire.text_frame makes them
            n, at = data[1] & 0x7F, 2
            if n == 126:
                n, at = int.from_bytes(data[2:4], "big"), 4
            elif n == 127:
                n, at = int.from_bytes(data[2:10], "big"), 10
            self.frames.append(orjson.loads(data[at:at + n]))
            data = data[at + n:]

    def write_text(self, payload: bytes) -> None:
        self.frames.append(orjson.loads(payload))

    def close(self, code: int, reason: str = "") -> None:
        self.frames.append({"closed": code})

    def abort(self) -> bool:
        return False

    async def drained(self) -> None:
        return None


def user(uid: str, status: str = "online") -> dict[str, Any]:
    return {"id": uid, "status": status}


def test_presence_diff_keeps_each_users_final_state() -> None:
    diff = presence_diff([("join", user("a")), ("join", user("b")), ("update", user("a", "busy")),
                          ("leave", user("b")), ("update", user("c", "away")),
                          ("leave", user("d"))])
    assert diff["event"] == "diff"
    assert diff["joins"] == [user("a", "busy")]
    assert diff["leaves"] == [user("b"), user("d")]
    assert diff["updates"] == [user("c", "away")]


async def test_room_delivers_in_seq_order_and_fills_gaps_from_the_store(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/t.db")
    await store.migrate()
    ws = (await store.create_workspace("w", "alice")).id
    hub = Hub(store, MemoryBroker())
    sink = Sink()
    conn = Connection(workspace_id=ws, principal=Principal("alice", None, None, None, {}),
                      role="owner", wire=sink, node="n", flusher=Flusher())
    conn.live = True
    room = await hub.attach(conn)
    conn.start()
    frames = {}
    for i in range(1, 6):
        committed = await store.apply(ws, Actor("alice"), CreateContact(name=f"c{i}"), None)
        assert committed.event is not None
        frames[committed.seq] = orjson.dumps(committed.event.frame())
    # 3 and 5 arrive before the others; 1 twice; 4 never comes by broker
    for seq in (3, 1, 5, 1, 2):
        room.on_event(seq, frames[seq])
    await asyncio.sleep(GAP_WAIT_S + 0.3)
    seqs = [f["seq"] for f in sink.frames if "seq" in f]
    assert seqs == [1, 2, 3, 4, 5]
    await conn.stop()
    await hub.detach(conn)
    await store.close()
