"""One collaborative note on this node: its document, its local sockets, its storage and
its relay to the other nodes (docs/collaboration.md).

A :class:`NoteRoom` exists while the note has a client on this node, and only then:
the node subscribes to the note's broker channel when the first client comes and
unsubscribes when the last goes; nothing runs on a timer for it. The room's ``doc``
(pycrdt) holds what is stored, no more: an update from a client is checked, appended
to the store (with whatever else arrived meanwhile, in one transaction), and only then
applied, sent to the room's other clients and published to the other nodes. A client
that joins gets the stored document, so no one ever sees an edit a crash could lose.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from pycrdt import Doc, Text, get_state

from livespace.broker import Broker, Subscription
from livespace.codes import Close, Error, Problem
from livespace.commands import UpdateNote
from livespace.notes import relay, ywire
from livespace.notes.awareness import REMOTE, AwarenessTable
from livespace.store import Actor, Store

log = logging.getLogger(__name__)

#: The shared text of a note (``doc.getText("body")`` in Yjs).
BODY = "body"
#: After the first change, the body is stored this soon (then at most once a second).
FIRST_FLUSH_S = 0.05


@dataclass(frozen=True, slots=True)
class NoteLimits:
    """The bounds of collaborative notes (docs/collaboration.md, "Limits")."""

    max_update: int = 64 * 1024  # one message; the socket's frame limit too
    max_doc: int = 1024 * 1024  # stored bytes of a document (snapshot + updates since)
    max_awareness_state: int = 4096  # one client's awareness state, JSON bytes
    awareness_rate: float = 20.0  # awareness messages per second per socket (burst 2 s)
    compact_updates: int = 500  # compact after this many updates since the snapshot
    compact_bytes: int = 256 * 1024  # ... or this many bytes


class Host(Protocol):
    """What a room needs of the node's notes (:class:`~livespace.notes.rooms.NoteRooms`)."""

    store: Store
    broker: Broker
    limits: NoteLimits
    instance: str

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...
    def forget(self, room: NoteRoom) -> None: ...


class Peer(Protocol):
    """One local socket of a note, as its room sees it."""

    id: str

    def send(self, frame: bytes) -> None:
        """Queue a binary frame (never blocks; a peer too far behind is closed)."""

    def close(self, code: int, reason: str) -> None: ...


def seed_update(note_id: str, body: str) -> bytes:
    """The document of a note that has none yet: its body as the text, written by a
    client id derived from the note id, so every node makes the same bytes and two
    nodes seeding at once add the text once."""
    doc: Doc[Any] = Doc(client_id=zlib.crc32(note_id.encode()) or 1)
    doc.get(BODY, type=Text).insert(0, body)
    return doc.get_update()


def check_update(update: bytes) -> None:
    """ValueError unless ``update`` decodes as a Yjs update."""
    get_state(update)


class NoteRoom:
    def __init__(self, rooms: Host, workspace_id: str, note_id: str) -> None:
        self.rooms = rooms
        self.workspace_id = workspace_id
        self.note_id = note_id
        self.channel = relay.channel(workspace_id, note_id)
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get(BODY, type=Text)
        self.peers: dict[str, Peer] = {}
        self.awareness = AwarenessTable()
        self.ready = asyncio.Event()
        self.subscription: Subscription | None = None
        self.failed = False
        self.note: dict[str, object] = {}
        self.body = ""  # the body as last stored
        #: (id, bytes) of stored updates the doc holds and no snapshot is known to
        self.covered: list[tuple[int, int]] = []
        self.snapshot_bytes = 0
        self._early: list[bytes] | None = []
        self._queue: list[tuple[bytes, str]] = []
        self._writing = False
        self._compacting = False
        self._editor: Actor | None = None
        self._flush: asyncio.TimerHandle | None = None
        self._next_flush = 0.0

    @property
    def stored_bytes(self) -> int:
        """What the document takes in the store (snapshot + updates since): its bound."""
        return self.snapshot_bytes + sum(size for _, size in self.covered)

    # ---- open and close -----------------------------------------------------------------

    async def open(self) -> bool:
        """Subscribe, then load (nothing stored in between is missed); False when the
        workspace has no such note."""
        store = self.rooms.store
        self.subscription = await self.rooms.broker.subscribe(self.channel, self.on_message)
        stored = await store.note_doc(self.workspace_id, self.note_id)
        if stored is None:
            return False
        self.note = stored.note
        self.body = str(stored.note["body"])
        if stored.snapshot is not None:
            self._apply(stored.snapshot)
            self.snapshot_bytes = len(stored.snapshot)
        for update_id, data in stored.updates:
            self._apply(data)
            self.covered.append((update_id, len(data)))
        if stored.snapshot is None and not stored.updates and self.body:
            seed = seed_update(self.note_id, self.body)
            (seed_id,) = await store.append_note_updates(self.workspace_id, self.note_id, [seed])
            self._apply(seed)
            self.covered.append((seed_id, len(seed)))
        early, self._early = self._early or [], None
        for message in early:
            self.on_message(message)
        self.ready.set()
        await self.rooms.broker.publish(self.channel, relay.query(self.rooms.instance))
        if str(self.text) != self.body:  # a crash came between an edit and its body
            author = stored.note.get("author")
            if isinstance(author, dict):
                self._editor = Actor(str(author.get("id")), author.get("name"))
            self._schedule_flush()
        return True

    async def close(self) -> None:
        """The last client left: unsubscribe, then store the body and compact."""
        await self.unsubscribe()
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self.failed:
            return
        if str(self.text) != self.body:
            await self.flush_body()
            wait = self._next_flush - time.monotonic()
            if str(self.text) != self.body and wait > 0:  # within a second of the last one
                await asyncio.sleep(wait)
                await self.flush_body()
        if self.covered:
            await self.compact()

    async def unsubscribe(self) -> None:
        subscription, self.subscription = self.subscription, None
        if subscription is not None:
            await subscription.cancel()

    def fail(self, reason: str) -> None:
        """The store refused a write: this room's doc may be ahead of nothing, so every
        client reconnects and the next room loads what is stored."""
        self.failed = True
        for peer in tuple(self.peers.values()):
            peer.close(Close.INTERNAL, reason)
        self.rooms.forget(self)

    # ---- a local client's messages --------------------------------------------------------

    def welcome(self, peer: Peer) -> None:
        """What a client gets first: our state vector (it answers with what we lack),
        then the awareness states."""
        peer.send(ywire.sync_step1(self.doc.get_state()))
        states = self.awareness.states(time.monotonic())
        if states:
            peer.send(ywire.awareness(states))

    def answer_step1(self, peer: Peer, state_vector: bytes) -> None:
        """Sync step 2: what the client lacks. ValueError on a malformed state vector."""
        peer.send(ywire.sync_step2(self.doc.get_update(state_vector)))

    def submit(self, peer: Peer, update: bytes, editor: Actor) -> None:
        """Store ``update`` (checked already), then apply and relay it."""
        self._queue.append((update, peer.id))
        self._editor = editor
        if not self._writing:
            self._writing = True
            self.rooms.spawn(self._write())

    def announce(self, peer: Peer, entries: list[ywire.AwarenessEntry]) -> None:
        """Awareness states a client set (stamped already): to everyone else."""
        changed = self.awareness.apply(entries, peer.id, time.monotonic())
        if changed:
            self._awareness_out(changed, exclude=peer.id)

    def leave(self, peer: Peer) -> None:
        self.peers.pop(peer.id, None)
        gone = self.awareness.drop(peer.id)
        if gone:
            self._awareness_out(gone, exclude=peer.id)

    def _awareness_out(self, entries: list[ywire.AwarenessEntry], exclude: str = "") -> None:
        frame = ywire.awareness(entries)
        for other in tuple(self.peers.values()):
            if other.id != exclude:
                other.send(frame)
        self.rooms.spawn(self.rooms.broker.publish(
            self.channel, relay.awareness(self.rooms.instance, ywire.awareness_payload(entries))
        ))

    # ---- storing ---------------------------------------------------------------------------

    async def _write(self) -> None:
        """Append what is queued, one transaction per batch; then apply and relay."""
        store, broker = self.rooms.store, self.rooms.broker
        try:
            while self._queue and not self.failed:
                batch, self._queue = self._queue, []
                try:
                    ids = await store.append_note_updates(
                        self.workspace_id, self.note_id, [u for u, _ in batch]
                    )
                except Exception:
                    log.exception("note %s: storing %d updates failed", self.note_id, len(batch))
                    self.fail("note storage failed: reconnect")
                    return
                published = []
                for (update, origin), update_id in zip(batch, ids, strict=True):
                    self._apply(update)
                    self.covered.append((update_id, len(update)))
                    frame = ywire.sync_update(update)
                    for peer in tuple(self.peers.values()):
                        if peer.id != origin:
                            peer.send(frame)
                    published.append(relay.update(self.rooms.instance, update_id, update))
                await broker.publish_many(self.channel, published)
                self._schedule_flush()
                if self._needs_compaction():
                    self.rooms.spawn(self.compact())
        finally:
            self._writing = False

    def _apply(self, update: bytes) -> None:
        try:
            self.doc.apply_update(update)
        except ValueError as err:  # stored before this check existed, or a bad relay
            log.warning("note %s: an update could not be applied: %s", self.note_id, err)

    def _needs_compaction(self) -> bool:
        limits = self.rooms.limits
        return not self._compacting and (
            len(self.covered) >= limits.compact_updates
            or self.stored_bytes - self.snapshot_bytes >= limits.compact_bytes
        )

    async def compact(self) -> None:
        """Fold the updates this doc holds into the note's snapshot (merged with the
        stored one, which may hold updates this node never got)."""
        if self._compacting:
            return
        self._compacting = True
        store = self.rooms.store
        try:
            for _ in range(3):  # another node may compact at the same moment
                snapshot, version = await store.note_snapshot(self.workspace_id, self.note_id)
                if snapshot is not None:
                    self._catch_up(snapshot)
                state, covered = self.doc.get_update(), list(self.covered)
                if await store.compact_note(self.workspace_id, self.note_id, state,
                                            [i for i, _ in covered], version):
                    del self.covered[:len(covered)]
                    self.snapshot_bytes = len(state)
                    return
        except Exception:
            log.exception("note %s: compaction failed (the updates stay)", self.note_id)
        finally:
            self._compacting = False

    async def catch_up(self) -> None:
        """Apply everything stored (what the broker lost reaches this node's clients)."""
        stored = await self.rooms.store.note_doc(self.workspace_id, self.note_id)
        if stored is None:
            return
        known = {update_id for update_id, _ in self.covered}
        for update_id, data in ([(0, stored.snapshot)] if stored.snapshot else []) + stored.updates:
            self._catch_up(data)
            if update_id and update_id not in known:
                self.covered.append((update_id, len(data)))

    def _catch_up(self, update: bytes) -> None:
        """Apply a stored state; send the clients what it brought that they lacked."""
        before = self.doc.get_state()
        self._apply(update)
        news = self.doc.get_update(before)
        if news != ywire.EMPTY_UPDATE:
            frame = ywire.sync_update(news)
            for peer in tuple(self.peers.values()):
                peer.send(frame)
            self._schedule_flush()

    # ---- the body (system of record) ----------------------------------------------------------

    def _schedule_flush(self) -> None:
        if self._flush is not None or self.failed:
            return
        delay = max(FIRST_FLUSH_S, self._next_flush - time.monotonic())
        self._flush = asyncio.get_running_loop().call_later(
            delay, lambda: self.rooms.spawn(self.flush_body())
        )

    async def flush_body(self) -> None:
        """Store the document's text as the note's body: a ``note_updated`` event, at
        most one a second (the store refuses sooner ones, whichever node asks)."""
        self._flush = None
        body = str(self.text)
        if body == self.body or self._editor is None:
            return
        retry: float | None = None
        try:
            await self.rooms.store.submit(self.workspace_id, self._editor,
                                          UpdateNote(self.note_id, body), None)
            self.body = body
        except Problem as problem:
            if problem.code == Error.RATE_LIMITED:
                retry = problem.retry_after or 1.0
            elif problem.code == Error.CONFLICT:
                self.body = body  # another node stored it
        except Exception:
            log.exception("note %s: storing its body failed (retrying)", self.note_id)
            retry = 1.0
        self._next_flush = time.monotonic() + (retry or 1.0)
        if str(self.text) != self.body and self.peers:
            self._schedule_flush()

    # ---- from the other nodes -------------------------------------------------------------

    def on_message(self, message: bytes) -> None:
        if self._early is not None:
            self._early.append(message)
            return
        item = relay.decode(message)
        if item is None or item.instance == self.rooms.instance:
            return
        if isinstance(item, relay.Update):
            self._apply(item.update)
            self.covered.append((item.id, len(item.update)))
            frame = ywire.sync_update(item.update)
            for peer in tuple(self.peers.values()):
                peer.send(frame)
            if self._needs_compaction():  # keeps this node's count of stored bytes true
                self.rooms.spawn(self.compact())
        elif isinstance(item, relay.Awareness):
            try:
                entries = ywire.decode_awareness(item.payload)
            except ywire.Malformed:
                return
            changed = self.awareness.apply(entries, REMOTE + item.instance, time.monotonic())
            if changed:
                frame = ywire.awareness(changed)
                for peer in tuple(self.peers.values()):
                    peer.send(frame)
        elif isinstance(item, relay.Query):
            mine = self.awareness.local_states()
            if mine:
                self.rooms.spawn(self.rooms.broker.publish(
                    self.channel,
                    relay.awareness(self.rooms.instance, ywire.awareness_payload(mine)),
                ))


__all__ = ["BODY", "Host", "NoteLimits", "NoteRoom", "Peer", "check_update", "seed_update"]
