"""Presence for one process (no broker, no Redis): plain dicts."""

from __future__ import annotations

import time
from typing import Any

from livespace.presence import Entry, Gone, aggregate


class MemoryPresence:
    """Presence for one process: plain dicts, nothing expires (connections leave on close)."""

    def __init__(self, ttl_s: float = 10.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, dict[str, Entry]] = {}  # workspace -> conn -> entry
        # workspace -> user -> their entries: a join or leave in a big room is O(1)
        self._users: dict[str, dict[str, dict[str, Entry]]] = {}

    def _user_entries(self, workspace_id: str, user_id: str) -> list[Entry]:
        return list(self._users.get(workspace_id, {}).get(user_id, {}).values())

    async def join(self, entry: Entry) -> dict[str, Any] | None:
        self._entries.setdefault(entry.workspace_id, {})[entry.conn_id] = entry
        users = self._users.setdefault(entry.workspace_id, {})
        tabs = users.setdefault(entry.user_id, {})
        first = not tabs
        tabs[entry.conn_id] = entry
        return entry.user(1) if first else None

    async def leave(self, workspace_id: str, conn_id: str) -> dict[str, Any] | None:
        conns = self._entries.get(workspace_id)
        if not conns or conn_id not in conns:
            return None
        entry = conns.pop(conn_id)
        users = self._users[workspace_id]
        tabs = users[entry.user_id]
        del tabs[conn_id]
        if not tabs:
            del users[entry.user_id]
        if not conns:
            del self._entries[workspace_id]
            del self._users[workspace_id]
        if tabs:
            return None
        return entry.user(0)

    async def update(
        self, workspace_id: str, conn_id: str, status: str | None, viewing: str | None,
        viewing_given: bool, call: str | None = None,
    ) -> dict[str, Any] | None:
        entry = self._entries.get(workspace_id, {}).get(conn_id)
        if entry is None:
            return None
        before = aggregate(self._user_entries(workspace_id, entry.user_id))
        if status is not None:
            entry.status = status
            entry.call = call
        if viewing_given:
            entry.viewing = viewing
        entry.updated = time.time()
        after = aggregate(self._user_entries(workspace_id, entry.user_id))
        return None if after == before else after[0]

    async def online(self, workspace_id: str) -> list[dict[str, Any]]:
        return aggregate(list(self._entries.get(workspace_id, {}).values()))

    async def beat(self) -> bool:
        return False  # one process: its entries cannot be lost behind its back

    async def sync(self, entries: list[Entry]) -> tuple[Gone, Gone]:
        wanted = {(e.workspace_id, e.conn_id) for e in entries}
        left: Gone = []
        for workspace_id, conns in list(self._entries.items()):
            for conn_id in [c for c in conns if (workspace_id, c) not in wanted]:
                user = await self.leave(workspace_id, conn_id)
                if user is not None:
                    left.append((workspace_id, user))
        joined: Gone = []
        for entry in entries:
            if entry.conn_id not in self._entries.get(entry.workspace_id, {}):
                user = await self.join(entry)
                if user is not None:
                    joined.append((entry.workspace_id, user))
        return joined, left

    async def reap(self) -> Gone:
        return []  # one process: no other node to die

    async def close(self) -> None:
        self._entries.clear()
        self._users.clear()
