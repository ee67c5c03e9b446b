"""One socket of a collaborative note: what its messages do, and its bounded outbox.

:meth:`DocPeer.handle` takes each binary message in the order received and never
awaits (an update is queued for storage; the next message is read meanwhile). Bad input
closes this socket only, with a documented code (docs/collaboration.md):

- 1007: a malformed message (:func:`livespace.notes.ywire.decode`) or an update or
  state vector the CRDT library cannot decode; 1003: a text frame;
- 1009: a message over the frame limit (closed by the server's WebSocket layer), an
  awareness state over ``max_awareness_state``, an update that would grow the stored
  document past ``max_doc``;
- 4008: awareness messages over the rate limit for longer than a few seconds (below
  that, the extra ones are dropped: awareness is ephemeral);
- 4009: this client does not read fast enough (its outbox is full).

A viewer's updates are not applied: they are counted and logged once per socket (the
viewer's own editor keeps its local edits until it reloads).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from typing import Protocol

from livespace.auth import Principal
from livespace.codes import Close
from livespace.limits import Abuse, TokenBucket
from livespace.notes import ywire
from livespace.notes.awareness import stamp
from livespace.notes.room import NoteLimits, NoteRoom, check_update
from livespace.store import Actor

log = logging.getLogger(__name__)


class BinarySocket(Protocol):
    async def send_bytes(self, data: bytes) -> None: ...
    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class DocPeer:
    def __init__(self, principal: Principal, role: str, limits: NoteLimits,
                 max_queue_bytes: int) -> None:
        self.id = uuid.uuid4().hex
        self.principal = principal
        self.user_id = principal.user_id
        self.role = role
        self.limits = limits
        self.actor = Actor(principal.user_id, principal.name or principal.email or None)
        self.messages_in = 0
        self.ignored_updates = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._max_queue = max_queue_bytes
        self._wake = asyncio.Event()
        self._gone = False
        now = time.monotonic()
        self._bucket = TokenBucket(limits.awareness_rate, limits.awareness_rate * 2, now)
        self._abuse = Abuse(limit=int(limits.awareness_rate * 2), window=5.0)

    # ---- out --------------------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        if self.close_code is not None:
            return
        if self._queued + len(frame) > self._max_queue:
            self.close(Close.TOO_SLOW, "too slow: reconnect")
            return
        self._queue.append(frame)
        self._queued += len(frame)
        self._wake.set()

    def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self._wake.set()

    def gone(self, code: int | None) -> None:
        """The client closed or went away: stop writing (no close frame is owed)."""
        self.close_code = self.close_code or code or Close.GOING_AWAY
        self._queue.clear()
        self._gone = True
        self._wake.set()

    async def write_to(self, socket: BinarySocket) -> None:
        """Send what is queued until closed; then send the close frame."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue and self.close_code not in (Close.TOO_SLOW, Close.INTERNAL):
                    frame = self._queue.popleft()
                    self._queued -= len(frame)
                    await socket.send_bytes(frame)
                if self._gone:
                    return
                if self.close_code is not None:
                    break
        except Exception:  # the socket went away: the reader sees it too
            self.close_code = self.close_code or Close.GOING_AWAY
            return
        with contextlib.suppress(Exception):
            await socket.close(self.close_code, self.close_reason[:120])

    # ---- in ---------------------------------------------------------------------------

    def handle(self, room: NoteRoom, message: bytes) -> None:
        """One binary message from the client."""
        if self.close_code is not None:
            return
        self.messages_in += 1
        if len(message) > self.limits.max_update:
            self.close(Close.TOO_BIG, "message too big")
            return
        try:
            decoded = ywire.decode(message)
        except ywire.Malformed as err:
            self.close(Close.MALFORMED, f"malformed message: {err}")
            return
        match decoded:
            case ywire.SyncStep1():
                try:
                    room.answer_step1(self, decoded.state_vector)
                except ValueError:
                    self.close(Close.MALFORMED, "malformed state vector")
            case ywire.SyncStep2() | ywire.SyncUpdate():
                self._update(room, decoded.update)
            case ywire.AwarenessUpdate():
                self._awareness(room, decoded.entries)
            case ywire.QueryAwareness():
                self.send(ywire.awareness(room.awareness.states(time.monotonic())))

    def _update(self, room: NoteRoom, update: bytes) -> None:
        if update == ywire.EMPTY_UPDATE:
            return
        if self.role == "viewer":
            self.ignored_updates += 1
            if self.ignored_updates == 1:
                log.info("note %s: update from viewer %s not applied (viewers read only)",
                         room.note_id, self.user_id)
            return
        if room.stored_bytes + len(update) > self.limits.max_doc:
            self.close(Close.TOO_BIG, "note document full")
            return
        try:
            check_update(update)
        except ValueError:
            self.close(Close.MALFORMED, "malformed update")
            return
        room.submit(self, update, self.actor)

    def _awareness(self, room: NoteRoom, entries: tuple[ywire.AwarenessEntry, ...]) -> None:
        now = time.monotonic()
        if self._bucket.take(now):
            if self._abuse.refuse(now):
                self.close(Close.POLICY, "awareness rate limit")
            return
        out = []
        for entry in entries:
            state = entry.state
            if state is not None:
                if len(state.encode()) > self.limits.max_awareness_state:
                    self.close(Close.TOO_BIG, "awareness state too big")
                    return
                state = stamp(state, self.user_id, self.principal.name)
            out.append(ywire.AwarenessEntry(entry.client_id, entry.clock, state))
        room.announce(self, out)
