"""``GET /api/workspaces/{id}/events/stream``: the workspace's log as Server-Sent Events.

For server-side consumers, ``curl`` and ``EventSource``: each durable event is
``id: <seq>``, ``event: <type>``, ``data: <the event frame>``; ``Last-Event-ID`` (or
``since``) resumes, ``compact=1`` compacts the catch-up as on the socket, a comment
line goes out at least every heartbeat, and a position that cannot be served exactly is
``event: resync_required`` (then the stream goes on live from the head).

The stream is a :class:`~livespace.connection.Connection` of its room like any socket
(the same bounded outbox, replay and live hand-off, 4009 when too slow, closed on
membership revocation and at the token's expiry), whose transport writes SSE instead of
WebSocket frames, and only durable events. It takes no part in presence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from livespace import replay
from livespace.auth import AuthError, token_from
from livespace.codes import Close, Error, Problem
from livespace.commands import EVENT_TYPES
from livespace.connection import Connection
from livespace.hub import Room
from livespace.node import Node
from livespace.resume import Replay, Resync, compacted, resume

log = logging.getLogger(__name__)
audit = logging.getLogger("livespace.audit")
router = APIRouter(prefix="/api/workspaces/{workspace_id}", tags=["events"])

#: Frames waiting between the connection's writer and the HTTP response: the outbox in
#: front of it holds the rest (and closes a reader that falls too far behind).
PIPE = 64
#: How a durable event's frame starts (frames are encoded with ``type`` first).
DURABLE = tuple(b'{"type":"%s"' % kind.encode() for kind in sorted(EVENT_TYPES))
_END = ""


class EventStreamTransport:
    """The connection's :class:`~livespace.wire.Wire`: its frames as SSE chunks into a
    small pipe the response drains (writable while the pipe has room).

    Closing never waits on the reader: the end goes into the pipe at once, and a
    response still not finished ``grace_s`` later (its reader stopped reading) is
    cancelled."""

    plain = False  # frames come one by one to write_text, as JSON

    def __init__(self, grace_s: float) -> None:
        self.pipe: asyncio.Queue[str] = asyncio.Queue()
        self.close_code: int | None = None
        self.grace_s = grace_s
        self.response: asyncio.Task[Any] | None = None
        self._room = asyncio.Event()
        self._room.set()
        self._ended = False

    @property
    def writable(self) -> bool:
        return not self._ended and self.pipe.qsize() < PIPE

    @property
    def gone(self) -> bool:
        return self._ended

    def write(self, data: bytes) -> None:
        raise RuntimeError("an event stream takes frames one by one")

    def write_text(self, payload: bytes) -> None:
        if not payload.startswith(DURABLE):
            return  # only the log: acks, presence and broadcasts are not for this stream
        frame = orjson.loads(payload)
        text = payload.decode()
        self.pipe.put_nowait(f"id: {frame['seq']}\nevent: {frame['type']}\ndata: {text}\n\n")
        if self.pipe.qsize() >= PIPE:
            self._room.clear()

    def close(self, code: int, reason: str = "") -> None:
        if self._ended:
            return
        self.close_code = code
        self._ended = True
        self.pipe.put_nowait(_END)
        self._room.set()
        if self.response is not None:
            asyncio.get_running_loop().call_later(self.grace_s, self.response.cancel)

    def abort(self) -> bool:
        if self._ended:
            return False
        self.close(self.close_code or Close.GOING_AWAY)
        return True

    async def drained(self) -> None:
        await self._room.wait()

    async def get(self) -> str:
        chunk = await self.pipe.get()
        if self.pipe.qsize() < PIPE:
            self._room.set()
        return chunk


async def _replay(conn: Connection, node: Node, room: Room, plan: Replay) -> None:
    try:
        await replay.run(conn, node.store, room, plan, node.metrics)
    except Exception:
        log.exception("replay failed on event stream %s", conn.id)
        conn.close(Close.RESTARTING, "replay failed")


def _position(since: int | None, last_event_id: str | None) -> int | None:
    raw = last_event_id if last_event_id is not None and last_event_id.strip() else None
    if raw is None:
        return since
    try:
        return int(raw.strip())
    except ValueError:
        return -1  # answered with resync_required, like any other unusable position


@router.get("/events/stream", summary="The log as Server-Sent Events (text/event-stream)",
            response_class=StreamingResponse)
async def event_stream(
    workspace_id: str, request: Request,
    since: Annotated[int | None, Query()] = None,
    compact: bool = False,
    epoch: Annotated[str | None, Query(max_length=200)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
) -> StreamingResponse:
    """Auth by `Authorization: Bearer` or `?token=` (EventSource cannot set headers);
    resume with `Last-Event-ID` (what EventSource sends on reconnect) or `since`."""
    node: Node = request.app.state.node
    token = token_from(request.headers, request.query_params)
    if token is None:
        raise Problem(Error.UNAUTHORIZED, "missing token")
    try:
        principal = await node.verifier.verify(token)
    except AuthError as err:
        raise Problem(Error.UNAUTHORIZED, f"invalid token: {err}") from None
    role = await node.service.role(workspace_id, principal.user_id)
    position = await node.store.position(workspace_id)
    if position is None:
        raise Problem(Error.FORBIDDEN, "not a member of this workspace")
    transport = EventStreamTransport(node.settings.close_grace_s)
    conn = Connection(workspace_id=workspace_id, principal=principal, role=role,
                      wire=transport, node=node.settings.node_id, flusher=node.hub.flusher,
                      max_bytes=node.settings.send_queue_bytes,
                      max_frames=node.settings.send_queue_frames,
                      close_grace_s=node.settings.close_grace_s)
    start = _position(since, last_event_id)
    seqs = None
    if compact and start is not None:
        seqs = await replay.compacted_seqs(node.store, workspace_id, start, position, epoch)
    room = await node.hub.attach(conn)
    plan: Replay | Resync | None = None
    head = room.head
    if start is not None:
        plan = resume(start, delivered=head, oldest=position.oldest, head=position.head,
                      epoch=epoch, current=position.epoch)
    first = ": livespace event stream\nretry: 2000\n\n"
    if isinstance(plan, Resync):
        resync = orjson.dumps({"type": "resync_required", "oldest_seq": plan.oldest_seq,
                               "head_seq": head, "epoch": position.epoch}).decode()
        first += f"id: {head}\nevent: resync_required\ndata: {resync}\n\n"
    if isinstance(plan, Replay):
        if seqs is not None:
            plan = compacted(plan, seqs, position.head)
        node.spawn(_replay(conn, node, room, plan))
    else:
        conn.last_seq = head
        conn.live = True
    conn.start()
    expiry = None
    if principal.exp is not None:
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, principal.exp + node.settings.jwt_leeway - time.time()),
            conn.close, Close.TOKEN_EXPIRED, "token expired")
    audit.info("event stream opened conn=%s user=%s workspace=%s since=%s compact=%s",
               conn.id, principal.user_id, workspace_id, start, compact)

    async def stream() -> AsyncIterator[str]:
        heartbeat = node.settings.heartbeat_s
        transport.response = asyncio.current_task()
        try:
            yield first
            while True:
                try:
                    chunk = await asyncio.wait_for(transport.get(), heartbeat)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if chunk == _END:
                    return
                yield chunk
        finally:
            if expiry is not None:
                expiry.cancel()
            with contextlib.suppress(Exception):
                await conn.stop()
                await node.hub.detach(conn)
            audit.info("event stream closed conn=%s user=%s workspace=%s code=%s", conn.id,
                       principal.user_id, workspace_id, transport.close_code)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
