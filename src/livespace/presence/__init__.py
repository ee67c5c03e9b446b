"""Who is online in each workspace, aggregated over a user's tabs.

A user is online while they have at least one live connection; ``join`` is announced on
the first, ``leave`` on the last (multi-tab aware). Their status and what they are
viewing are those of the connection that changed them last.

:class:`Presence` is the interface; :func:`open_presence` picks the engine from the URL
(like :mod:`livespace.broker`): no URL means the in-process
:class:`~livespace.presence.memory.MemoryPresence`, ``redis://...`` the cluster-wide
:class:`~livespace.presence.redis.RedisPresence` (its Lua scripts in ``lua/``). Both are
checked by one contract suite (``tests/integration/test_presence_contract.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class Entry:
    """One connection's presence."""

    conn_id: str
    workspace_id: str
    user_id: str
    email: str | None
    name: str | None
    role: str
    status: str = "online"
    viewing: str | None = None
    node: str = ""
    updated: float = field(default_factory=time.time)

    def user(self, connections: int = 1) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "status": self.status,
            "viewing": self.viewing,
            "connections": connections,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "conn_id": self.conn_id, "workspace_id": self.workspace_id,
            "user_id": self.user_id, "email": self.email, "name": self.name,
            "role": self.role, "status": self.status, "viewing": self.viewing,
            "node": self.node, "updated": self.updated,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Entry:
        return cls(**obj)


def aggregate(entries: list[Entry]) -> list[dict[str, Any]]:
    """One user dict per user: the newest connection's status, the count of connections."""
    by_user: dict[str, list[Entry]] = {}
    for entry in entries:
        by_user.setdefault(entry.user_id, []).append(entry)
    users = []
    for group in by_user.values():
        newest = max(group, key=lambda e: e.updated)
        users.append(newest.user(len(group)))
    users.sort(key=lambda u: u["id"])
    return users


class Presence(Protocol):
    """Cluster-wide presence.

    Contract:
    - :meth:`join` returns the user's aggregated dict when ``entry`` is that user's first
      live connection in the workspace on any node (announce ``join``), else None.
    - :meth:`leave` returns the user's dict when it removed their last connection
      (announce ``leave``), else None; leaving an unknown connection returns None.
    - :meth:`update` returns the user's aggregated dict after the change, or None when
      the connection is unknown or nothing changed.
    - Entries of a node that stops calling :meth:`refresh` expire after ``ttl_s``;
      :meth:`expire` removes them and returns (workspace_id, user dict) for each user who
      left because of it, once.
    - :meth:`refresh` returns the given connections it holds no entry for (expired while
      their node could not refresh, or lost with the engine's data): join them again.
    - An engine that cannot reach its server degrades rather than raise from
      :meth:`join`, :meth:`leave`, :meth:`update` (None) and :meth:`online` (empty);
      :meth:`refresh` and :meth:`expire` raise, and set things right once it is back.
    """

    async def join(self, entry: Entry) -> dict[str, Any] | None: ...
    async def leave(self, workspace_id: str, conn_id: str) -> dict[str, Any] | None: ...
    async def update(
        self, workspace_id: str, conn_id: str, status: str | None, viewing: str | None,
        viewing_given: bool,
    ) -> dict[str, Any] | None: ...
    async def online(self, workspace_id: str) -> list[dict[str, Any]]: ...
    async def refresh(self, workspace_id: str, conn_ids: list[str]) -> list[str]: ...
    async def expire(self) -> list[tuple[str, dict[str, Any]]]: ...
    async def close(self) -> None: ...


def open_presence(url: str | None, *, prefix: str = "livespace", ttl_s: float = 30.0) -> Presence:
    """The presence engine for ``url`` (None: in-process); imported lazily."""
    if not url:
        from livespace.presence.memory import MemoryPresence

        return MemoryPresence(ttl_s)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from livespace.presence.redis import RedisPresence

        return RedisPresence(url, prefix=prefix, ttl_s=ttl_s)
    raise ValueError(f"unsupported REDIS_URL scheme: {url.split(':', 1)[0]!r}")


__all__ = ["Entry", "Presence", "aggregate", "open_presence"]
