"""Cluster-wide presence in Redis, shared by every node of a cluster.

Per workspace, a hash ``{prefix}:presence:{workspace_id}`` (conn_id -> entry JSON) and
a sorted set ``{prefix}:presence-exp:{workspace_id}`` (conn_id -> expiry); the set
``{prefix}:presence-workspaces`` lists the workspaces that have entries, for
:meth:`RedisPresence.expire`. (Separate key names, so that no workspace id can make one
key collide with another.)

Every read-modify-write is one Lua script (``lua/presence_*.lua``), so "first / last
connection of this user" is decided once across nodes. Expiries and ``updated`` use the
Redis clock, so nodes with skewed clocks agree.

While Redis cannot be reached, presence degrades instead of failing connections:
:meth:`~RedisPresence.join`, :meth:`~RedisPresence.leave` and :meth:`~RedisPresence.update`
announce nothing and :meth:`~RedisPresence.online` is empty. Once it is back, the node's
:meth:`~RedisPresence.refresh` reports the connections it lacks (the node joins them
again) and entries left behind expire, their leave announced by :meth:`~RedisPresence.expire`.
"""

from __future__ import annotations

import logging
from importlib.resources import files
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from livespace.presence import Entry, aggregate

log = logging.getLogger(__name__)

SCRIPTS = ("join", "leave", "update", "refresh", "online", "expire")
#: How long one presence call waits for Redis (connect, then reply).
TIMEOUT_S = 2.0
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisPresence:
    """:class:`~livespace.presence.Presence` on Redis; entries live ``ttl_s`` past their
    last :meth:`refresh` (or join/update)."""

    def __init__(
        self, url_or_client: str | aioredis.Redis, *, prefix: str, ttl_s: float = 30.0
    ) -> None:
        self._owns_client = isinstance(url_or_client, str)
        self._client: aioredis.Redis = (
            aioredis.from_url(url_or_client, socket_connect_timeout=TIMEOUT_S,
                              socket_timeout=TIMEOUT_S)
            if isinstance(url_or_client, str) else url_or_client
        )
        self._prefix = prefix
        self.ttl_s = ttl_s
        lua = files("livespace.presence") / "lua"
        self._scripts: dict[str, AsyncScript] = {
            name: self._client.register_script((lua / f"presence_{name}.lua").read_text())
            for name in SCRIPTS
        }
        self._workspaces_key = f"{prefix}:presence-workspaces"

    def _keys(self, workspace_id: str) -> list[str]:
        return [
            f"{self._prefix}:presence:{workspace_id}",
            f"{self._prefix}:presence-exp:{workspace_id}",
            self._workspaces_key,
        ]

    async def _run(self, script: str, keys: list[str], *args: str | float) -> Any:
        return await self._scripts[script](keys=keys, args=list(args))

    async def _try(self, script: str, keys: list[str], *args: str | float) -> Any:
        """:meth:`_run`, or None when Redis cannot be reached (logged)."""
        try:
            return await self._run(script, keys, *args)
        except UNREACHABLE as err:
            log.warning("presence: %s skipped, Redis unreachable: %s", script, err)
            return None

    async def join(self, entry: Entry) -> dict[str, Any] | None:
        first = await self._try(
            "join", self._keys(entry.workspace_id), entry.conn_id,
            orjson.dumps(entry.to_json()).decode(), self.ttl_s, entry.workspace_id,
        )
        return entry.user(1) if first == 1 else None

    async def leave(self, workspace_id: str, conn_id: str) -> dict[str, Any] | None:
        last = await self._try("leave", self._keys(workspace_id), conn_id, workspace_id)
        return None if last is None else Entry.from_json(orjson.loads(last)).user(0)

    async def update(
        self, workspace_id: str, conn_id: str, status: str | None, viewing: str | None,
        viewing_given: bool,
    ) -> dict[str, Any] | None:
        changes: dict[str, str | None] = {}
        if status is not None:
            changes["status"] = status
        if viewing_given:
            changes["viewing"] = viewing
        found = await self._try(
            "update", self._keys(workspace_id)[:2], conn_id,
            orjson.dumps(changes).decode(), self.ttl_s,
        )
        if found is None:
            return None
        old, new, *others = (Entry.from_json(orjson.loads(json)) for json in found)
        before, after = aggregate([old, *others]), aggregate([new, *others])
        return None if after == before else after[0]

    async def online(self, workspace_id: str) -> list[dict[str, Any]]:
        found = await self._try("online", self._keys(workspace_id)[:2]) or []
        return aggregate([Entry.from_json(orjson.loads(json)) for json in found])

    async def refresh(self, workspace_id: str, conn_ids: list[str]) -> list[str]:
        if not conn_ids:
            return []
        unknown = await self._run("refresh", self._keys(workspace_id)[1:2], self.ttl_s,
                                  *conn_ids)
        return [_text(conn_id) for conn_id in unknown]

    async def expire(self) -> list[tuple[str, dict[str, Any]]]:
        workspaces = sorted(_text(w) for w in await self._client.smembers(self._workspaces_key))
        if not workspaces:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for workspace_id in workspaces:
                await self._scripts["expire"](
                    keys=self._keys(workspace_id), args=[workspace_id], client=pipe
                )
            results = await pipe.execute()
        return [
            (workspace_id, Entry.from_json(orjson.loads(json)).user(0))
            for workspace_id, gone in zip(workspaces, results, strict=True)
            for json in gone
        ]

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


__all__ = ["SCRIPTS", "RedisPresence"]
