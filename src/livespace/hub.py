"""This node's connections, grouped by workspace, and the fan-out to them.

Each workspace with a local connection has a :class:`Room` subscribed to the workspace's
broker channel. Durable events arrive there possibly out of order (several writers,
several nodes): the room delivers them strictly in ``seq`` order, each once, holding
early ones back and filling a gap from the store when it does not close by itself.
Each event's frame is encoded once by its publisher and the same text goes to every
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from livespace import envelope
from livespace.broker import Broker, Subscription
from livespace.codes import Close
from livespace.connection import Connection, Flusher
from livespace.jsoncodec import dumpb
from livespace.presence_fanout import (
    PresenceFanout,
)
from livespace.roster import Roster
from livespace.store import Event, Store
from livespace.verified import Memberships
from livespace.wire import text_frame

log = logging.getLogger(__name__)

#: A room that opens reads the workspace's memberships at once when there are at most
#: this many: the rest of a join storm finds them in the membership cache.
PRELOAD_MEMBERS_MAX = 20_000
#: How long an out-of-order event waits for the ones before it before the store is asked.
GAP_WAIT_S = 0.25
REPLAY_PAGE = 1000
#: A room whose last connection left stays open (subscribed, its head and roster kept)
#: this long, so that a reconnect finds it ready: no store read, no subscribe. Closed by
#: the node's one room sweep, not by a timer per room.
ROOM_LINGER_S = 30.0


class Room:
    """The local connections of one workspace and its ordered event stream."""

    def __init__(self, hub: Hub, workspace_id: str) -> None:
        self.hub = hub
        self.workspace_id = workspace_id
        self.conns: dict[str, Connection] = {}
        self.next_seq = 1
        self.early: dict[int, bytes] = {}
        self.store_head = 0  # the highest seq the store was seen to hold
        self.epoch = ""  # the log's epoch when the room opened
        self.subscription: Subscription | None = None
        self.presence_batch: list[tuple[str, dict[str, Any]]] = []
        self.roster = Roster()
        self.empty_since: float | None = None  # monotonic time its last connection left
        self.ready = asyncio.Event()
        self._gap_task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Subscribe first, then read the head and who is online: no event or presence
        change can fall between the two."""
        self.subscription = await self.hub.broker.subscribe(
            envelope.channel(self.workspace_id), self.on_message
        )
        position = await self.hub.store.position(self.workspace_id)
        if position is not None:
            self.epoch = position.epoch
            self.next_seq = max(self.next_seq, position.head + 1)
        self._drain_early()
        await self.reseed()
        await self.hub.preload_members(self.workspace_id)
        self.ready.set()

    async def reseed(self) -> None:
        if self.hub.presence is not None:
            self.roster.seed(await self.hub.presence.online(self.workspace_id))

    async def close(self) -> None:
        if self._gap_task is not None:
            self._gap_task.cancel()
        if self.subscription is not None:
            await self.subscription.cancel()

    @property
    def head(self) -> int:
        """The last seq delivered to this room's connections."""
        return self.next_seq - 1

    # ---- from the broker ----------------------------------------------------------------

    def on_message(self, message: bytes) -> None:
        item = envelope.decode(message)
        if isinstance(item, envelope.Durable):
            self.on_event(item.seq, item.frame)
        elif isinstance(item, envelope.Ephemeral | envelope.Presence):
            if isinstance(item, envelope.Presence):
                with contextlib.suppress(orjson.JSONDecodeError):
                    self.roster.apply(orjson.loads(item.frame))
            framed = text_frame(item.frame)
            for conn in tuple(self.conns.values()):
                if conn.id != item.exclude:
                    conn.push(item.frame, False, framed)
        elif isinstance(item, envelope.Direct):
            framed = text_frame(item.frame)
            for conn in tuple(self.conns.values()):
                if conn.user_id == item.user_id and conn.id != item.exclude:
                    conn.push(item.frame, False, framed)
        elif isinstance(item, envelope.Tabs) and item.node != self.hub.node_id:
            self.roster.tabs(item.user_id, item.delta)

    def on_event(self, seq: int, frame: bytes) -> None:
        if seq < self.next_seq:
            return  # already delivered (replayed gap fill, or a duplicate)
        if not self.conns and self.ready.is_set():
            # nobody to deliver to: the head moves on, what a later connection missed
            # is in the store (it resumes with since)
            self.next_seq = seq + 1
            self.early.clear()
            return
        if not self.ready.is_set() or seq > self.next_seq:
            self.early[seq] = frame
            if self.ready.is_set():
                self._watch_gap()
            return
        self._deliver(seq, frame)
        self._drain_early()

    def _deliver(self, seq: int, frame: bytes) -> None:
        self.next_seq = seq + 1
        framed = text_frame(frame)  # encoded once for every connection
        for conn in tuple(self.conns.values()):
            conn.push_event(seq, frame, framed)
        if self.hub.on_delivered is not None:
            self.hub.on_delivered(frame)

    def _drain_early(self) -> None:
        early = self.early
        for seq in [s for s in early if s < self.next_seq]:
            del early[seq]
        while self.next_seq in early:
            seq = self.next_seq
            self._deliver(seq, early.pop(seq))

    def _watch_gap(self) -> None:
        if self._gap_task is None or self._gap_task.done():
            self._gap_task = asyncio.get_running_loop().create_task(self._fill_gap())

    def note_head(self, head: int) -> None:
        """The store holds events up to ``head``: those past this room's head reach its
        connections even when the broker never brings them (a message lost while the
        subscriber was cut off, the last event before a quiet period, a publisher that
        died between commit and publish)."""
        if head > self.head:
            if not self.conns:
                self.next_seq = head + 1  # an empty room: no one to fill a gap for
                self.early.clear()
                return
            self.store_head = max(self.store_head, head)
            self._watch_gap()

    async def _fill_gap(self) -> None:
        """After :data:`GAP_WAIT_S` (the broker may still bring them), read from the store
        the events missing before the early ones, or up to the noted store head."""
        await asyncio.sleep(GAP_WAIT_S)
        while self.early or self.next_seq <= self.store_head:
            before = self.next_seq
            try:
                events = await self.hub.store.events_after(
                    self.workspace_id, self.next_seq - 1, REPLAY_PAGE
                )
            except Exception as err:  # the next event or head check tries again
                log.warning("gap fill for workspace %s failed: %s", self.workspace_id, err)
                return
            for event in events:
                if event.seq == self.next_seq:
                    self._deliver(event.seq, dumpb(event.frame()))
            self._drain_early()
            if self.next_seq == before:
                break  # nothing more to read (or what is missing is past retention)


class Hub(PresenceFanout):
    """Every room of this node, and its view of memberships."""

    def __init__(self, store: Store, broker: Broker, presence: Any = None,
                 node_id: str = "") -> None:
        self.store = store
        self.node_id = node_id
        self.broker = broker
        self.presence = presence  # a livespace.presence.Presence: seeds the rosters
        self.rooms: dict[str, Room] = {}
        self.flusher = Flusher()
        # exact while the broker delivers the control messages; bypassed while it is cut off
        self.memberships = Memberships(
            store.role_of, trusted=lambda: bool(getattr(broker, "connected", True)))
        self._control: Subscription | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._opening: dict[str, asyncio.Task[Room]] = {}
        #: Called with each durable event's frame once a room delivered it (metrics).
        self.on_delivered: Callable[[bytes], None] | None = None

    async def start(self) -> None:
        """Hear every workspace's membership changes (the membership cache's truth)."""
        self._control = await self.broker.subscribe(envelope.CONTROL_CHANNEL,
                                                    self.on_control_message)

    @property
    def connections(self) -> int:
        return sum(len(room.conns) for room in self.rooms.values())

    @property
    def active_rooms(self) -> int:
        """Rooms with a connection (the others linger, see :data:`ROOM_LINGER_S`)."""
        return sum(1 for room in self.rooms.values() if room.conns)

    async def room(self, workspace_id: str) -> Room:
        room = self.rooms.get(workspace_id)
        if room is not None:
            await room.ready.wait()
            return room
        task = self._opening.get(workspace_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._open_room(workspace_id))
            self._opening[workspace_id] = task
        return await asyncio.shield(task)

    async def _open_room(self, workspace_id: str) -> Room:
        room = Room(self, workspace_id)
        try:
            await room.open()
        except BaseException:
            await room.close()
            raise
        finally:
            self._opening.pop(workspace_id, None)
        self.rooms[workspace_id] = room
        return room

    async def attach(self, conn: Connection) -> Room:
        """Add ``conn`` to its room; it receives live events after ``room.head``."""
        room = await self.room(conn.workspace_id)
        room.conns[conn.id] = conn
        room.empty_since = None
        return room

    async def detach(self, conn: Connection) -> None:
        room = self.rooms.get(conn.workspace_id)
        if room is None or room.conns.pop(conn.id, None) is None:
            return
        if not room.conns:
            room.empty_since = time.monotonic()

    async def preload_members(self, workspace_id: str) -> None:
        """Fill the membership cache with a (not too big) workspace's members."""
        with contextlib.suppress(Exception):
            generation = self.memberships.generation
            roles = await self.store.roles(workspace_id, PRELOAD_MEMBERS_MAX)
            if roles is not None:
                self.memberships.preload(workspace_id, list(roles.items()), generation)

    async def sweep(self, linger_s: float = ROOM_LINGER_S) -> None:
        """Close the rooms that have been empty for ``linger_s``."""
        now = time.monotonic()
        for workspace_id, room in tuple(self.rooms.items()):
            if not room.conns and room.empty_since is not None and (
                    now - room.empty_since >= linger_s):
                del self.rooms[workspace_id]
                await room.close()

    # ---- publishing ---------------------------------------------------------------------

    async def publish_events(self, workspace_id: str, events: list[Event]) -> None:
        """A committed batch of the workspace's events, in seq order, in one publish."""
        await self.broker.publish_many(
            envelope.channel(workspace_id),
            [envelope.durable(event.seq, dumpb(event.frame())) for event in events],
        )

    async def publish(self, workspace_id: str, frame: dict[str, Any], exclude: str = "") -> None:
        await self.broker.publish(
            envelope.channel(workspace_id), envelope.ephemeral(dumpb(frame), exclude)
        )

    async def direct(self, workspace_id: str, user_id: str, frame: dict[str, Any],
                     exclude: str = "") -> None:
        """``frame`` for ``user_id``'s connections of the workspace only, on every node
        (none: nobody gets it, and that is not an error)."""
        await self.broker.publish(
            envelope.channel(workspace_id), envelope.direct(dumpb(frame), user_id, exclude)
        )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """A spawned task's outcome is retrieved and a failure logged, never dropped."""
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("hub task failed", exc_info=error)

    async def publish_control(self, workspace_id: str, body: dict[str, Any]) -> None:
        """A membership change: this node's cache forgets it at once, every node's when
        the message arrives (and their rooms apply it to open sockets)."""
        body = {**body, "workspace_id": workspace_id}
        self.memberships.on_control(workspace_id, body)
        await self.broker.publish(envelope.CONTROL_CHANNEL, envelope.control(body))

    def on_control_message(self, message: bytes) -> None:
        item = envelope.decode(message)
        if not isinstance(item, envelope.Control):
            return
        workspace_id = item.body.get("workspace_id")
        if not isinstance(workspace_id, str):
            return
        self.memberships.on_control(workspace_id, item.body)
        room = self.rooms.get(workspace_id)
        if room is not None:
            self.on_control(room, item.body)

    def on_control(self, room: Room, body: dict[str, Any]) -> None:
        """Membership changes reach open sockets on every node within the broker's latency."""
        kind = body.get("kind")
        user_id = body.get("user_id")
        for conn in tuple(room.conns.values()):
            mine = conn.user_id == user_id
            if kind == "workspace_deleted" or (kind == "member_removed" and mine):
                conn.close(Close.FORBIDDEN, "membership revoked")
            elif kind == "role_changed" and mine:
                conn.role = str(body.get("role"))
                conn.send({"type": "role_changed", "workspace_id": room.workspace_id,
                           "role": conn.role})

    async def catch_up(self) -> None:
        """After a broker reconnect: each room's head compared with the store's (what
        the broker lost is filled), its roster read again."""
        await self.check_heads()
        for room in tuple(self.rooms.values()):
            try:
                await room.reseed()
            except Exception as err:  # presence: the next reconnect or room open tries again
                log.warning("roster of workspace %s not read again: %r", room.workspace_id,
                            err)

    async def check_heads(self) -> None:
        """Every room's head against the store's, in one query for all of them: finds an
        event the broker lost when no later one reveals the gap (the last before a quiet
        period; one whose publisher died between commit and publish)."""
        if not self.rooms:
            return
        heads = await self.store.heads(list(self.rooms))
        for workspace_id, head in heads.items():
            room = self.rooms.get(workspace_id)
            if room is not None:
                room.note_head(head)

    async def close_all(self, code: int, reason: str) -> None:
        conns = [c for room in self.rooms.values() for c in room.conns.values()]
        for conn in conns:
            conn.close(code, reason)
        if conns:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(c.wait_closed() for c in conns)), timeout=5.0
                )
