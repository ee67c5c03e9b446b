"""One client connection: its identity, its bounded outbox and how it is written.

The socket endpoint (:mod:`livespace.api.socket`) hands each text frame to
:mod:`livespace.session`; everything that goes back out passes through
:meth:`Connection.push`, which never blocks: a frame either fits the outbox, is dropped
(ephemeral), or marks the connection too slow (4009).

Writing: the :class:`Flusher` writes each connection's queued frames once per event loop
tick, as one write to its :class:`~livespace.wire.Wire`, with no task switch per frame;
a connection's writer task only runs while its socket is paused (kernel buffer full) and
to close it. An idle connection has no task and no timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from typing import Any

from livespace.auth import Principal
from livespace.codes import Close
from livespace.jsoncodec import dumpb
from livespace.outbox import Outbox, Push
from livespace.store.model import SessionRow
from livespace.times import now_iso
from livespace.wire import Wire, text_frame

log = logging.getLogger(__name__)

#: How long a closing connection may take to flush what is pending before it is cut
#: (``LIVESPACE_CLOSE_GRACE_S``): a peer that stops reading cannot hold memory longer.
CLOSE_GRACE_S = 10.0
#: Connection ids: a random prefix per process and a counter (unique across nodes and
#: restarts without a random draw per connection).
_ID_PREFIX = os.urandom(8).hex()
_ids = itertools.count(1)


class Flusher:
    """Writes every connection that got frames in this event loop tick, once, at its end."""

    __slots__ = ("_dirty", "_scheduled")

    def __init__(self) -> None:
        self._dirty: list[Connection] = []
        self._scheduled = False

    def mark(self, conn: Connection) -> None:
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.flush()


class Connection:
    """A live connection of ``principal`` to ``workspace_id``."""

    __slots__ = (
        "_close_grace_s", "_close_reason", "_closed", "_closed_waiter", "_cut_timer",
        "_marked", "_preframed", "_room_waiter", "_started", "_wake", "_writer",
        "acked_seq", "batch", "close_code", "dirty", "first_seq", "flusher", "id",
        "last_seq", "live", "opened", "outbox", "principal", "role", "session", "typing",
        "wire", "workspace_id",
    )

    def __init__(
        self,
        *,
        workspace_id: str,
        principal: Principal,
        role: str,
        wire: Wire,
        node: str,
        flusher: Flusher,
        batch: bool = False,
        max_bytes: int = 4 << 20,
        max_frames: int = 10_000,
        close_grace_s: float = CLOSE_GRACE_S,
    ) -> None:
        self.id = f"{_ID_PREFIX}{next(_ids):016x}"
        self.workspace_id = workspace_id
        self.principal = principal
        self.role = role
        self.wire = wire
        self.batch = batch
        self._preframed = wire.plain and not batch
        self.outbox = Outbox(max_bytes, max_frames)
        self.flusher = flusher
        self._marked = False
        # False while a replay is being sent: live events are not queued, the replay reads
        # them from the store until it has caught up (Session._replay)
        self.live = False
        self.last_seq = 0  # highest durable seq pushed to this connection
        self.first_seq = 0  # lowest durable seq pushed (for delivery-rate accounting)
        self.acked_seq = 0
        self.close_code: int | None = None
        self._closed = False
        self._closed_waiter: asyncio.Future[None] | None = None
        self.typing: dict[str, asyncio.TimerHandle] = {}
        self.session = SessionRow(
            id=self.id,
            workspace_id=workspace_id,
            user_id=principal.user_id,
            node=node,
            connected_at=now_iso(),
        )
        self.dirty = True
        self.opened = time.monotonic()
        self._wake = False
        self._room_waiter: asyncio.Future[None] | None = None  # replay waits for room
        self._writer: asyncio.Task[None] | None = None
        self._started = False
        self._close_reason = ""
        self._close_grace_s = close_grace_s
        self._cut_timer: asyncio.TimerHandle | None = None

    @property
    def user_id(self) -> str:
        return self.principal.user_id

    @property
    def closed(self) -> bool:
        """True once the writer is done: closed, cut, or the peer went away."""
        return self._closed

    async def wait_closed(self) -> None:
        if self._closed:
            return
        if self._closed_waiter is None:
            self._closed_waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._closed_waiter)

    def _set_closed(self) -> None:
        self._closed = True
        waiter, self._closed_waiter = self._closed_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._release_room()

    # ---- outbound -----------------------------------------------------------------------

    def start(self) -> None:
        """Frames may flow: a writer task runs only while there is something to wait for
        (a paused socket, a close) - an idle connection has none."""
        self._started = True
        if self.outbox and not self._marked:
            self._marked = True
            self.flusher.mark(self)
        if self.close_code is not None:
            self._kick()

    def _kick(self) -> None:
        self._wake = True
        if self._started and (self._writer is None or self._writer.done()):
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def send(self, frame: dict[str, Any], *, keepalive: bool = False) -> None:
        """Queue a reply (welcome, ack, error, pong): never dropped."""
        self.push(dumpb(frame), durable=True, keepalive=keepalive)

    def push(self, payload: bytes, durable: bool, framed: bytes | None = None, *,
             keepalive: bool = False) -> None:
        """Queue one frame's JSON ``payload``; ``framed`` is it as a WebSocket frame, when
        the caller already encoded it for many connections. A ``keepalive`` frame (a
        pong) is counted but does not make the session row due for a write: an idle
        connection that pings costs the store nothing until it closes."""
        if self.close_code is not None:
            return
        if self._preframed:
            payload = framed if framed is not None else text_frame(payload)
        outbox = self.outbox
        result = outbox.push(payload, durable)
        if result is not Push.QUEUED and self._started and self.wire.writable:
            # a burst within one loop tick (a committed batch's events) is not slowness:
            # hand the kernel what it takes now, before the Flusher's turn, and try again
            self._write_wire(self.wire)
            result = outbox.push(payload, durable)
        if result is Push.QUEUED:
            self.session.messages_out += 1
            if not keepalive:
                self.dirty = True
            if not self._marked and self._started:
                self._marked = True
                self.flusher.mark(self)
        elif result is Push.OVERFLOW:
            log.info("connection %s too slow: closing with 4009", self.id)
            self.close(Close.TOO_SLOW, "too slow: reconnect with since")

    def push_event(self, seq: int, payload: bytes, framed: bytes | None = None) -> None:
        """A durable event of the workspace, in seq order; duplicates are ignored."""
        if self.close_code is not None:
            return
        if not self.live:
            return  # replaying: the replay reads this event from the store
        if seq <= self.last_seq:
            return
        if not self.first_seq:
            self.first_seq = seq
        self.last_seq = seq
        self.session.events_delivered += 1
        self.push(payload, True, framed)

    def _has_room(self) -> bool:
        outbox = self.outbox
        return len(outbox) * 2 <= outbox.max_frames and outbox.bytes * 2 <= outbox.max_bytes

    async def room(self) -> None:
        """Wait until the outbox is at most half full (replay's backpressure)."""
        while not self._has_room() and not self._closed:
            if self._room_waiter is None:
                self._room_waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._room_waiter)

    def _release_room(self) -> None:
        waiter = self._room_waiter
        if waiter is not None and (self._closed or self._has_room()):
            self._room_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def close(self, code: int, reason: str = "") -> None:
        """Close after what is pending is written (the close frame queued behind it); cut
        the connection if that takes longer than the close grace."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.session.close_code = code
        self._close_reason = reason
        self._kick()
        self._cut_timer = asyncio.get_running_loop().call_later(self._close_grace_s, self._cut)

    def _cut(self) -> None:
        """The peer did not take what was pending in time: drop it and the connection."""
        self._cut_timer = None
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        self.outbox.clear()
        # a close frame stuck behind a full kernel buffer, or a peer that never answers
        # it, would keep the socket (and its buffers) forever: abort
        if self.wire.abort():
            log.info("connection %s did not close within %.1f s: cut", self.id,
                     self._close_grace_s)

    # ---- writing ------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what is queued in one go, if the socket takes it now (the Flusher's call)."""
        self._marked = False
        wire = self.wire
        if not self.outbox:
            return
        if wire.writable:
            self._write_wire(wire)
        elif not wire.gone:
            self._kick()  # the writer task waits for the kernel buffer to drain

    def _write_wire(self, wire: Wire) -> None:
        outbox = self.outbox
        while outbox and wire.writable:
            frames = outbox.take()
            if self._preframed:
                wire.write(frames[0] if len(frames) == 1 else b"".join(frames))
            elif self.batch:
                wire.write_text(frames[0] if len(frames) == 1
                                else b"[" + b",".join(frames) + b"]")
            else:
                for payload in frames:
                    wire.write_text(payload)
        if self._room_waiter is not None:
            self._release_room()

    async def _write_loop(self) -> None:
        """Drain the outbox, then close if asked; ends when there is nothing left to do."""
        wire = self.wire
        ended = False
        try:
            while self._wake:
                self._wake = False
                while self.outbox and not wire.gone:
                    await wire.drained()
                    self._write_wire(wire)
                if self.close_code is not None:
                    ended = True
                    if not wire.gone:
                        wire.close(self.close_code, self._close_reason)
                    return
        except asyncio.CancelledError:
            ended = True
            with contextlib.suppress(Exception):
                if not wire.gone:
                    wire.close(self.close_code or Close.GOING_AWAY)
        except Exception as exc:  # the peer went away mid-write
            ended = True
            log.debug("connection %s write failed: %s", self.id, exc)
        finally:
            if ended:
                self._set_closed()

    def lost(self) -> None:
        """The TCP connection is gone: nothing more will be written."""
        if self.close_code is None:
            self.close_code = Close.GOING_AWAY
        if self._cut_timer is not None:
            self._cut_timer.cancel()
            self._cut_timer = None
        self.outbox.clear()
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        self._set_closed()

    async def stop(self) -> None:
        """Stop the writer (the endpoint is done with the socket). A close this side
        started keeps its cut timer: the TCP connection may outlive the endpoint."""
        if self.close_code is None:
            self.close_code = Close.GOING_AWAY
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        for handle in self.typing.values():
            handle.cancel()
