"""Presence announcements of a node's rooms: one frame per change in small rooms,
coalesced ``diff`` frames in big ones, and the tab-count deltas the rosters need.

:class:`PresenceFanout` is part of :class:`livespace.hub.Hub` (a mixin: it uses the
hub's broker, rooms, node id and task spawner).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from livespace import envelope
from livespace.jsoncodec import dumpb

if TYPE_CHECKING:
    from livespace.broker import Broker

#: Rooms with at least this many local connections get presence changes coalesced
#: (``presence`` ``diff`` frames, every PRESENCE_WINDOW_S) instead of one frame per
#: change: 1,000 users joining cost ~10 frames per connection, not 1,000.
PRESENCE_COALESCE_AT = 100
PRESENCE_WINDOW_S = 0.1
#: ... and the window grows with the room: 0.1 s more per 500 local connections, at most
#: 1 s, so that a join storm into a room of thousands costs a bounded number of frames
#: per connection (each diff frame is one write to every connection of the room).
PRESENCE_WINDOW_MAX_S = 1.0


def presence_diff(batch: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Several presence changes as one frame: each user once, in their final state.

    A user who left last is in ``leaves``; one who joined (and maybe changed since) in
    ``joins`` with their latest state; the rest in ``updates``.
    """
    final: dict[str, tuple[str, dict[str, Any]]] = {}
    for event, user in batch:
        before = final.get(user["id"])
        if event == "update" and before is not None and before[0] == "join":
            event = "join"
        final[user["id"]] = (event, user)
    diff: dict[str, Any] = {"type": "presence", "event": "diff",
                            "joins": [], "leaves": [], "updates": []}
    for event, user in final.values():
        diff[{"join": "joins", "leave": "leaves"}.get(event, "updates")].append(user)
    return diff


class PresenceFanout:
    broker: Broker
    rooms: dict[str, Any]  # workspace id -> livespace.hub.Room
    node_id: str

    def _spawn(self, coro: Any) -> None:
        raise NotImplementedError

    async def announce(self, workspace_id: str, event: str, user: dict[str, Any],
                       exclude: str = "") -> None:
        """A presence change (join, leave, update) for the workspace's connections.

        Small rooms get the contract's frame at once; rooms of PRESENCE_COALESCE_AT local
        connections or more get ``{"type": "presence", "event": "diff", "joins": [...],
        "leaves": [...], "updates": [...]}`` once per PRESENCE_WINDOW_S.
        """
        room = self.rooms.get(workspace_id)
        if room is not None:  # this node's roster at once (the broker's echo repeats it)
            room.roster.apply({"event": event, "user": user})
        if room is None or len(room.conns) < PRESENCE_COALESCE_AT:
            await self._publish_presence(
                workspace_id, {"type": "presence", "event": event, "user": user}, exclude)
            return
        if not room.presence_batch:
            window = min(PRESENCE_WINDOW_MAX_S,
                         PRESENCE_WINDOW_S * (1 + len(room.conns) // 500))
            asyncio.get_running_loop().call_later(
                window, lambda: self._spawn(self._flush_presence(room))
            )
        room.presence_batch.append((event, user))

    async def _flush_presence(self, room: Any) -> None:  # a livespace.hub.Room
        batch, room.presence_batch = room.presence_batch, []
        if not batch:
            return
        if len(batch) == 1:
            event, user = batch[0]
            frame: dict[str, Any] = {"type": "presence", "event": event, "user": user}
        else:
            frame = presence_diff(batch)
        await self._publish_presence(room.workspace_id, frame)

    async def _publish_presence(self, workspace_id: str, frame: dict[str, Any],
                                exclude: str = "") -> None:
        await self.broker.publish(
            envelope.channel(workspace_id), envelope.presence(dumpb(frame), exclude))

    async def tabs(self, workspace_id: str, user_id: str, delta: int) -> None:
        """A user's tab count moved with no join or leave to announce (the rosters'):
        this node's at once, the others' through the broker."""
        room = self.rooms.get(workspace_id)
        if room is not None:
            room.roster.tabs(user_id, delta)
        await self.broker.publish(envelope.channel(workspace_id),
                                  envelope.tabs(user_id, delta, self.node_id))
