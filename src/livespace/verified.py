"""Small per-node caches that keep SQL and signature checks off the handshake path.

:class:`VerifiedTokens`: a token whose signature and claims were verified stays valid
until its ``exp`` (the settings it was checked against do not change while the process
runs), so a reconnect with the same token is not verified again. Keyed by the token's
SHA-256, never the token itself; bounded (oldest first out).

:class:`Memberships`: ``(workspace, user) -> role`` as read from the store, kept exact
by the membership control messages (every node receives all of them on the node-wide
control channel, see :mod:`livespace.hub`), emptied when the broker reconnects
(messages may have been lost meanwhile) and bypassed while it is cut off, and re-read
after ``ttl_s`` at the latest, for
changes made behind the server's back (SQL, ``livespace member`` on a stopped cluster).
Only memberships are cached: a refusal is always read again, so an added member is
admitted at once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

TOKENS_MAX = 10_000
MEMBERSHIPS_MAX = 100_000
MEMBERSHIP_TTL_S = 300.0


class VerifiedTokens(Generic[T]):
    """What verified tokens stand for, until they expire."""

    __slots__ = ("_entries", "leeway", "max_entries")

    def __init__(self, max_entries: int = TOKENS_MAX, leeway: float = 0.0) -> None:
        self.max_entries = max_entries
        self.leeway = leeway
        self._entries: dict[bytes, tuple[T, float]] = {}

    @staticmethod
    def key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> T | None:
        key = self.key(token)
        hit = self._entries.get(key)
        if hit is None:
            return None
        if time.time() >= hit[1]:
            del self._entries[key]
            return None
        return hit[0]

    def put(self, token: str, value: T, exp: float | None) -> None:
        if exp is None:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[self.key(token)] = (value, exp + self.leeway)

    def __len__(self) -> int:
        return len(self._entries)


class Memberships:
    """This node's view of members' roles, exact while the broker delivers."""

    __slots__ = ("_entries", "_read", "_trusted", "generation", "max_entries", "reads", "ttl_s")

    def __init__(self, read: Callable[[str, str], Awaitable[str | None]], *,
                 trusted: Callable[[], bool] = lambda: True,
                 max_entries: int = MEMBERSHIPS_MAX, ttl_s: float = MEMBERSHIP_TTL_S) -> None:
        """``trusted``: False while control messages may be lost (the broker is cut off):
        then every role is read from the store."""
        self._read = read
        self._trusted = trusted
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._entries: dict[tuple[str, str], tuple[str, float]] = {}
        #: moves on every change heard of: a read that started before one is not kept
        self.generation = 0
        self.reads = 0  # store reads (misses), for tests and metrics

    def cached(self, workspace_id: str, user_id: str) -> str | None:
        hit = self._entries.get((workspace_id, user_id))
        if hit is None or hit[1] <= time.monotonic():
            return None
        return hit[0]

    async def role(self, workspace_id: str, user_id: str) -> str | None:
        if not self._trusted():
            self.reads += 1
            return await self._read(workspace_id, user_id)
        role = self.cached(workspace_id, user_id)
        if role is not None:
            return role
        generation = self.generation
        self.reads += 1
        role = await self._read(workspace_id, user_id)
        if role is not None and generation == self.generation:
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[(workspace_id, user_id)] = (role, time.monotonic() + self.ttl_s)
        return role

    def preload(self, workspace_id: str, roles: list[tuple[str, str]],
                generation: int) -> None:
        """A workspace's members as read when ``generation`` was current (dropped when a
        change was heard since)."""
        if generation != self.generation or not self._trusted():
            return
        until = time.monotonic() + self.ttl_s
        for user_id, role in roles:
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[(workspace_id, user_id)] = (role, until)

    def on_control(self, workspace_id: str, body: dict[str, Any]) -> None:
        """A membership control message (or this node's own change)."""
        self.generation += 1
        kind = body.get("kind")
        user_id = body.get("user_id")
        if kind == "workspace_deleted":
            for key in [k for k in self._entries if k[0] == workspace_id]:
                del self._entries[key]
        elif isinstance(user_id, str):
            self._entries.pop((workspace_id, user_id), None)

    def clear(self) -> None:
        """The broker reconnected: what was missed meanwhile is read again."""
        self.generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
