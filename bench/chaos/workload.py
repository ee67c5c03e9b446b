"""The clients of a chaos run, each recording what it saw.

- a :class:`Writer` sends ``contact_created`` frames named ``<writer>-<n>``, each with
  its ref, and retries the same ref (after ``retry_after``, or on another node when its
  connection dropped) until it is acknowledged;
- a :class:`ReaderClient` receives every durable event and resumes with
  ``since=<last seq>`` whenever its connection ends, moving to the next node;
- a :class:`Lurker` is only present, on one node; it does not move when its node dies,
  so that its ``leave`` shows how fast a dead node's users are reaped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from bench.chaos.checker import Logged, Reader, Segment, Write
from bench.chaos.services import Node

DURABLE = frozenset({"contact_created", "contact_updated", "contact_deleted", "note_added",
                     "note_updated"})
ANSWER_S = 10.0  # a mutation unanswered this long is retried (on a new connection)


class Peer:
    """What the workload needs of the cluster: the nodes and a token for a user."""

    def __init__(self, nodes: list[Node], workspace: str, token: Callable[[str], str]) -> None:
        self.nodes = nodes
        self.workspace = workspace
        self.token = token
        self.stopping = False

    def live(self, start: int) -> list[Node]:
        """The nodes that are up, starting from ``start`` (round robin)."""
        ordered = self.nodes[start % len(self.nodes):] + self.nodes[:start % len(self.nodes)]
        return [node for node in ordered if node.up]

    async def connect(self, user: str, node: Node, since: int | None = None
                      ) -> tuple[ClientConnection, dict[str, Any]]:
        url = f"{node.ws}/ws/workspace/{self.workspace}"
        if since is not None:
            url += f"?since={since}"
        ws = await websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {self.token(user)}"},
            open_timeout=5, ping_interval=2, ping_timeout=4, max_size=2**24)
        try:
            welcome = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        except BaseException:
            await ws.close()
            raise
        if welcome.get("type") != "welcome":
            await ws.close()
            raise ConnectionError(f"no welcome: {welcome}")
        return ws, welcome


class Writer:
    def __init__(self, peer: Peer, name: str, home: int, pause_s: float = 0.02) -> None:
        self.peer = peer
        self.name = name
        self.home = home
        self.pause_s = pause_s
        self.writes: list[Write] = []
        self.connected = False
        self.done = False  # set to stop after the write in progress is acknowledged

    async def run(self) -> None:
        ws: ClientConnection | None = None
        attempt = 0
        n = 0
        while not self.done:
            write = Write(ref=f"{self.name}-r{n}", name=f"{self.name}-{n}")
            self.writes.append(write)
            while write.acked_seq is None:
                if ws is None:
                    ws = await self._connect(attempt)
                    attempt += 1
                    if ws is None:
                        continue
                try:
                    reply = await self._send(ws, write)
                except (websockets.ConnectionClosed, TimeoutError, OSError):
                    write.refused.append("no answer")
                    await self._drop(ws)
                    ws = None
                    continue
                if reply.get("type") == "ack":
                    write.acked_seq = int(reply["seq"])
                    write.acked_at = time.monotonic()
                else:
                    write.refused.append(str(reply.get("code")))
                    if reply.get("code") != "unavailable":
                        break  # a refusal that a retry would not change (a bug)
                    await asyncio.sleep(float(reply.get("retry_after") or 0.5))
            n += 1
            await asyncio.sleep(self.pause_s)
        if ws is not None:
            await self._drop(ws)

    async def _connect(self, attempt: int) -> ClientConnection | None:
        for node in self.peer.live(self.home + attempt):
            try:
                ws, _ = await self.peer.connect(self.name, node)
                self.connected = True
                return ws
            except (OSError, TimeoutError, websockets.WebSocketException, ConnectionError):
                continue
        await asyncio.sleep(0.3)
        return None

    async def _drop(self, ws: ClientConnection) -> None:
        self.connected = False
        await ws.close()

    async def _send(self, ws: ClientConnection, write: Write) -> dict[str, Any]:
        frame = {"type": "contact_created", "ref": write.ref, "data": {"name": write.name}}
        await ws.send(orjson.dumps(frame).decode())
        deadline = time.monotonic() + ANSWER_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            reply = orjson.loads(await asyncio.wait_for(ws.recv(), left))
            for item in reply if isinstance(reply, list) else [reply]:
                if item.get("ref") == write.ref and item.get("type") in ("ack", "error"):
                    return dict(item)


class ReaderClient:
    def __init__(self, peer: Peer, name: str, home: int) -> None:
        self.peer = peer
        self.history = Reader(name)
        self.home = home
        self.last = 0
        self.connected = False
        #: (monotonic time, event, user id) of every presence frame seen
        self.presence: list[tuple[float, str, str]] = []

    async def run(self) -> None:
        attempt = 0
        while not self.peer.stopping:
            for node in self.peer.live(self.home + attempt):
                await self._read(node)
                if self.peer.stopping:
                    return
            attempt += 1
            await asyncio.sleep(0.2)

    async def _read(self, node: Node) -> None:
        try:
            ws, welcome = await self.peer.connect(self.history.name, node, since=self.last)
        except (OSError, TimeoutError, websockets.WebSocketException, ConnectionError):
            return
        segment = Segment(since=self.last, resync=bool(welcome.get("resync_required")))
        self.history.segments.append(segment)
        self.connected = True
        try:
            async for raw in ws:
                frames = orjson.loads(raw)
                for frame in frames if isinstance(frames, list) else [frames]:
                    self._take(segment, frame)
        except (websockets.ConnectionClosed, OSError):
            pass
        finally:
            self.connected = False
            await ws.close()

    def _take(self, segment: Segment, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind in DURABLE:
            data = frame.get("data") or {}
            segment.events.append(Logged(int(frame["seq"]), str(frame["event_id"]),
                                         str(data.get("name"))))
            self.last = max(self.last, int(frame["seq"]))
        elif kind == "presence":
            now = time.monotonic()
            if frame.get("event") == "diff":
                for key, event in (("joins", "join"), ("leaves", "leave")):
                    for user in frame.get(key, []):
                        self.presence.append((now, event, str(user["id"])))
            else:
                self.presence.append((now, str(frame["event"]), str(frame["user"]["id"])))

    async def stop(self) -> None:
        self.peer.stopping = True


class Lurker:
    """Present on node ``home`` only; reconnects there once it is up again, but not
    before ``away_s`` (past the presence bound), so that each death or pause of its
    node makes exactly one ``leave`` whose delay can be measured."""

    def __init__(self, peer: Peer, name: str, home: int, away_s: float) -> None:
        self.peer = peer
        self.name = name
        self.node = peer.nodes[home]
        self.away_s = away_s
        self.connected = False
        self.since = 0.0  # monotonic time of its current connection's welcome

    def present_at(self, moment: float) -> bool:
        """Was it connected (to its node) at ``moment``?"""
        return self.connected and self.since <= moment

    async def run(self) -> None:
        while not self.peer.stopping:
            if not self.node.up:
                await asyncio.sleep(0.2)
                continue
            try:
                ws, _ = await self.peer.connect(self.name, self.node)
            except (OSError, TimeoutError, websockets.WebSocketException, ConnectionError):
                await asyncio.sleep(0.3)
                continue
            self.connected, self.since = True, time.monotonic()
            try:
                async for _ in ws:
                    pass
            except (websockets.ConnectionClosed, OSError):
                pass
            finally:
                self.connected = False
                await ws.close()
            await asyncio.sleep(self.away_s)
