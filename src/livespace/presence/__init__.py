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
from typing import Any, Protocol, TypeAlias


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
    call: str | None = None  # with status in_call: the call's id
    updated: float = field(default_factory=time.time)

    def user(self, connections: int = 1) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "status": self.status,
            "viewing": self.viewing,
            "call": self.call,
            "connections": connections,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "conn_id": self.conn_id, "workspace_id": self.workspace_id,
            "user_id": self.user_id, "email": self.email, "name": self.name,
            "role": self.role, "status": self.status, "viewing": self.viewing,
            "call": self.call, "node": self.node, "updated": self.updated,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Entry:
        return cls(**obj)


#: (workspace_id, user dict) for each user who joined or left.
Gone: TypeAlias = list[tuple[str, dict[str, Any]]]


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
      connection in the workspace on any node (announce ``join``), else None.
    - :meth:`leave` returns the user's dict when it removed their last connection
      (announce ``leave``), else None; leaving an unknown connection returns None.
    - :meth:`update` returns the user's aggregated dict after the change, or None when
      the connection is unknown or nothing changed. A ``status`` also sets ``call`` (the
      call's id with ``in_call``, else None); without ``status`` the call stays.
    - Liveness is per node, not per entry: :meth:`beat` (every ``ttl_s / 4`` or so)
      keeps all of this node's entries. When a node has not beaten for ``ttl_s``, the
      next :meth:`reap` on any node removes its entries and returns (workspace_id, user
      dict) for each user left with no connection, exactly once across nodes.
    - :meth:`beat` returns True when this node's entries may not be what it holds (its
      first beat, it was reaped after a pause, the engine lost its data, or a call could
      not reach the engine): the caller then calls :meth:`sync` with all of its entries,
      which makes them exactly these and returns the users that joined and left by it.
    - An engine that cannot reach its server degrades rather than raise from
      :meth:`join`, :meth:`leave`, :meth:`update` (None) and :meth:`online` (empty);
      :meth:`beat`, :meth:`sync` and :meth:`reap` raise.
    """

    async def join(self, entry: Entry) -> dict[str, Any] | None: ...
    async def leave(self, workspace_id: str, conn_id: str) -> dict[str, Any] | None: ...
    async def update(
        self, workspace_id: str, conn_id: str, status: str | None, viewing: str | None,
        viewing_given: bool, call: str | None = None,
    ) -> dict[str, Any] | None: ...
    async def online(self, workspace_id: str) -> list[dict[str, Any]]: ...
    async def beat(self) -> bool: ...
    async def sync(self, entries: list[Entry]) -> tuple[Gone, Gone]: ...
    async def reap(self) -> Gone: ...
    async def close(self) -> None: ...


def open_presence(url: str | None, *, prefix: str = "livespace", ttl_s: float = 10.0,
                  node_id: str = "node") -> Presence:
    """The presence engine for ``url`` (None: in-process); imported lazily."""
    if not url:
        from livespace.presence.memory import MemoryPresence

        return MemoryPresence(ttl_s)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from livespace.presence.redis import RedisPresence

        return RedisPresence(url, prefix=prefix, ttl_s=ttl_s, node_id=node_id)
    raise ValueError(f"unsupported REDIS_URL scheme: {url.split(':', 1)[0]!r}")


__all__ = ["Entry", "Gone", "Presence", "aggregate", "open_presence"]
