"""This node's open notes: a :class:`~livespace.notes.room.NoteRoom` per note with a local
client, opened by the first and closed with the last.

Membership changes reach note sockets too: once the node has a note socket, it listens
to the node-wide channel of membership changes (member removed, role changed,
workspace deleted: :data:`~livespace.envelope.CONTROL_CHANNEL`, where every node's hub
publishes them) and applies them to the note sockets of that workspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from livespace import envelope
from livespace.broker import Broker, Subscription
from livespace.codes import Close
from livespace.notes.room import NoteLimits, NoteRoom
from livespace.store import Store

log = logging.getLogger(__name__)

#: The node-wide channel of membership changes (the workspace id in each message).
MEMBERS_CHANNEL = envelope.CONTROL_CHANNEL


class Member(Protocol):
    """A note socket as membership changes see it."""

    id: str
    user_id: str
    role: str

    def send(self, frame: bytes) -> None: ...
    def close(self, code: int, reason: str) -> None: ...


class NoteRooms:
    def __init__(self, store: Store, broker: Broker, limits: NoteLimits,
                 spawn: Callable[[Coroutine[Any, Any, Any]], None]) -> None:
        self.store = store
        self.broker = broker
        self.limits = limits
        self.spawn = spawn
        #: this process on the note channels (a node ignores what it published itself)
        self.instance = uuid.uuid4().hex[:12]
        self.rooms: dict[tuple[str, str], NoteRoom] = {}
        self._opening: dict[tuple[str, str], asyncio.Task[NoteRoom | None]] = {}
        self._members: dict[str, dict[str, Member]] = {}
        self._node_wide: asyncio.Task[Subscription] | None = None

    @property
    def clients(self) -> int:
        return sum(len(room.peers) for room in self.rooms.values())

    async def join(self, workspace_id: str, note_id: str, peer: Member) -> NoteRoom | None:
        """Add ``peer`` to the note's room (opening it); None when the workspace has no
        such note. The peer gets the welcome (state vector, awareness) before this
        returns, and every update stored after it."""
        key = (workspace_id, note_id)
        try:
            await self._watch_members(workspace_id, peer)
            room = self.rooms.get(key)
            if room is None:
                task = self._opening.get(key)
                if task is None:
                    task = asyncio.get_running_loop().create_task(self._open(key))
                    self._opening[key] = task
                room = await asyncio.shield(task)
            else:
                await room.ready.wait()
        except BaseException:
            await self._unwatch(workspace_id, peer)
            raise
        if room is None or room.failed:
            await self._unwatch(workspace_id, peer)
            return None
        room.peers[peer.id] = peer
        room.welcome(peer)
        return room

    async def _open(self, key: tuple[str, str]) -> NoteRoom | None:
        room = NoteRoom(self, *key)
        try:
            found = await room.open()
        except BaseException:
            with contextlib.suppress(Exception):
                await room.unsubscribe()
            raise
        finally:
            self._opening.pop(key, None)
        if not found:
            await room.unsubscribe()
            return None
        self.rooms[key] = room
        return room

    async def leave(self, room: NoteRoom, peer: Member) -> None:
        room.leave(peer)
        await self._unwatch(room.workspace_id, peer)
        if not room.peers and self.rooms.get((room.workspace_id, room.note_id)) is room:
            del self.rooms[(room.workspace_id, room.note_id)]
            await room.close()

    def forget(self, room: NoteRoom) -> None:
        """Drop a failed room at once (its clients were closed)."""
        if self.rooms.get((room.workspace_id, room.note_id)) is room:
            del self.rooms[(room.workspace_id, room.note_id)]
            self.spawn(room.unsubscribe())

    async def catch_up(self) -> None:
        """After a broker reconnect: each open note reads what is stored and sends its
        clients what they lack (updates relayed while the broker was cut off)."""
        for room in tuple(self.rooms.values()):
            try:
                await room.catch_up()
            except Exception:
                log.exception("note %s: catching up from the store failed", room.note_id)

    async def close(self) -> None:
        """Node stopping: every note socket closes with 1012; bodies are stored."""
        for room in tuple(self.rooms.values()):
            for peer in tuple(room.peers.values()):
                peer.close(Close.RESTARTING, "server restarting")
        for room in tuple(self.rooms.values()):
            with contextlib.suppress(Exception):
                await room.close()
        self.rooms.clear()
        if self._node_wide is not None and self._node_wide.done():
            with contextlib.suppress(Exception):
                await self._node_wide.result().cancel()
        self._node_wide = None

    # ---- membership -----------------------------------------------------------------------

    async def _watch_members(self, workspace_id: str, peer: Member) -> None:
        self._members.setdefault(workspace_id, {})[peer.id] = peer
        await self._watch_node_wide()

    async def _unwatch(self, workspace_id: str, peer: Member) -> None:
        members = self._members.get(workspace_id)
        if members is None:
            return
        members.pop(peer.id, None)
        if not members:
            del self._members[workspace_id]

    async def _watch_node_wide(self) -> None:
        """The node-wide channel of membership changes (see :data:`MEMBERS_CHANNEL`)."""
        if self._node_wide is None:
            self._node_wide = asyncio.get_running_loop().create_task(
                self.broker.subscribe(MEMBERS_CHANNEL, self._on_members))
        await asyncio.shield(self._node_wide)

    def _on_members(self, message: bytes) -> None:
        item = envelope.decode(message)
        if isinstance(item, envelope.Control):
            workspace_id = item.body.get("workspace_id")
            if isinstance(workspace_id, str):
                self._apply(workspace_id, item.body)

    def _apply(self, workspace_id: str, body: dict[str, Any]) -> None:
        kind, user_id = body.get("kind"), body.get("user_id")
        for peer in tuple(self._members.get(workspace_id, {}).values()):
            if kind == "workspace_deleted" or (kind == "member_removed"
                                               and peer.user_id == user_id):
                peer.close(Close.FORBIDDEN, "membership revoked")
            elif kind == "role_changed" and peer.user_id == user_id:
                peer.role = str(body.get("role"))
