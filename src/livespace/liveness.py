"""This node's liveness in the cluster: one beat per node keeps all of its presence
entries, and every node reaps the entries of nodes that stopped beating.

A node's users leave everyone's presence within ``bound_s``
(``LIVESPACE_PRESENCE_TTL_S``, 10 s) of its death: its liveness key lives
``bound_s - 2 * reap_s`` past each beat, and every node looks for expired ones every
``reap_s``. A node paused past the bound (``SIGSTOP``, a stalled host, a partition from
Redis) is reaped like a dead one; its next beat finds its key gone and puts its
connections' entries back (``join`` announced again).

The node's entries are the ones :meth:`Liveness.hold` was told about: a connection is
held before its presence join and released before its leave, so a :meth:`sync` that
runs between the two announces each change once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from livespace.presence import Entry, Gone, Presence

if TYPE_CHECKING:
    from livespace.connection import Connection
    from livespace.hub import Hub

log = logging.getLogger(__name__)


def timing(bound_s: float) -> tuple[float, float, float]:
    """(key ttl, beat interval, reap interval) for leaves within ``bound_s`` of a death."""
    reap_s = min(0.5, bound_s / 8)
    key_ttl_s = bound_s - 2 * reap_s
    return key_ttl_s, key_ttl_s / 4, reap_s


def entry_of(conn: Connection, node_id: str) -> Entry:
    """``conn``'s presence entry as it joins (status online)."""
    principal = conn.principal
    return Entry(conn.id, conn.workspace_id, principal.user_id, principal.email,
                 principal.name, conn.role, node=node_id)


class Liveness:
    def __init__(self, presence: Presence, hub: Hub, bound_s: float,
                 on_reaped: Callable[[int], None] | None = None) -> None:
        self.presence = presence
        self.on_reaped = on_reaped
        self.hub = hub
        self.key_ttl_s, self.beat_s, self.reap_s = timing(bound_s)
        self.held: dict[str, Entry] = {}  # conn_id -> entry, what this node's entries are

    def hold(self, entry: Entry) -> None:
        self.held[entry.conn_id] = replace(entry)  # a copy: an engine may keep ``entry``

    def release(self, conn_id: str) -> None:
        self.held.pop(conn_id, None)

    def note(self, conn_id: str, status: str | None, viewing: str | None,
             viewing_given: bool, call: str | None = None) -> None:
        """A presence update, kept so that a :meth:`sync` restores it."""
        entry = self.held.get(conn_id)
        if entry is not None:
            if status is not None:
                entry.status = status
                entry.call = call
            if viewing_given:
                entry.viewing = viewing

    async def beat(self) -> bool:
        """Beat; when this node's entries may be wrong, make them right and announce
        (True then)."""
        if not await self.presence.beat():
            return False
        joined, left = await self.presence.sync(list(self.held.values()))
        if joined or left:
            log.info("presence: synced this node's entries (%d joins, %d leaves announced)",
                     len(joined), len(left))
        await self._announce("join", joined)
        await self._announce("leave", left)
        return True

    async def reap(self) -> None:
        """Remove dead nodes' entries; announce each user who left with them, once."""
        gone = await self.presence.reap()
        if gone:
            log.info("presence: reaped %d users of dead nodes", len(gone))
            if self.on_reaped is not None:
                self.on_reaped(len(gone))
        await self._announce("leave", gone)

    async def _announce(self, event: str, users: Gone) -> None:
        for workspace_id, user in users:
            await self.hub.announce(workspace_id, event, user)
