"""Cluster-wide presence in Redis, shared by every node of a cluster.

Keys (``{prefix}`` is ``LIVESPACE_REDIS_PREFIX``; separate names, so that no workspace id
can make one key collide with another):

- ``{prefix}:presence:{workspace_id}``: hash conn_id -> entry JSON;
- ``{prefix}:presence-users:{workspace_id}``: hash user_id -> number of entries, so
  "first / last connection of this user" costs O(1);
- ``{prefix}:presence-node:{incarnation}``: set of ``<workspace_id>\\n<conn_id>`` this
  node process holds;
- ``{prefix}:node:{incarnation}``: the node's liveness key (value: its node id), set
  with ``PX`` by every beat;
- ``{prefix}:nodes``: sorted set incarnation -> liveness deadline (Redis clock).

An incarnation is the node id plus a random suffix per process, so a node restarted
under the same id never adopts the entries of its dead predecessor.

No entry has a timer of its own: one beat per node (:meth:`RedisPresence.beat`) keeps
all of its entries. When a node's deadline passes (it died, or stalled past the bound),
any other node's :meth:`RedisPresence.reap` removes its entries and reports the users
who left, once. Every read-modify-write is one Lua script (``presence/lua/*.lua``), and all
times are Redis's, so node clock skew does not matter.

While Redis cannot be reached, presence degrades instead of failing connections:
:meth:`~RedisPresence.join`, :meth:`~RedisPresence.leave` and :meth:`~RedisPresence.update`
announce nothing and :meth:`~RedisPresence.online` is empty. The next beat that reaches
Redis reports it, and :meth:`~RedisPresence.sync` sets this node's entries right.
"""

from __future__ import annotations

import logging
import uuid
from importlib.resources import files
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from livespace.presence import Entry, Gone, aggregate

log = logging.getLogger(__name__)

SCRIPTS = ("presence_join", "presence_leave", "presence_update", "presence_online",
           "node_beat", "node_reap", "node_sync")
#: How long one presence call waits for Redis (connect, then reply).
TIMEOUT_S = 2.0
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
#: Dead nodes cleaned up by one reap call (the next call takes the rest).
REAP_BATCH = 16


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(flat: list[Any]) -> Gone:
    """``[ws, json, ws, json, ...]`` from a script as (workspace_id, user dict) pairs."""
    return [(_text(flat[i]), Entry.from_json(orjson.loads(flat[i + 1])).user(0))
            for i in range(0, len(flat), 2)]


#: Scripts that use the functions of ``lua/lib_entries.lua`` (put before them).
WITH_ENTRIES_LIB = frozenset({"node_reap", "node_sync"})


def script_text(name: str) -> str:
    """The Lua source of script ``name``, with the shared functions it uses first."""
    lua = files("livespace.presence") / "lua"
    text = (lua / f"{name}.lua").read_text()
    if name in WITH_ENTRIES_LIB:
        text = (lua / "lib_entries.lua").read_text() + text
    return text


class RedisPresence:
    """:class:`~livespace.presence.Presence` on Redis for the node ``node_id``; its entries
    live while it beats, and at most ``ttl_s`` past its last beat."""

    def __init__(
        self, url_or_client: str | aioredis.Redis, *, prefix: str, ttl_s: float = 10.0,
        node_id: str = "node",
    ) -> None:
        self._owns_client = isinstance(url_or_client, str)
        self._client: aioredis.Redis = (
            aioredis.from_url(url_or_client, socket_connect_timeout=TIMEOUT_S,
                              socket_timeout=TIMEOUT_S)
            if isinstance(url_or_client, str) else url_or_client
        )
        self._prefix = prefix
        self.ttl_s = ttl_s
        self.node_id = node_id
        self.incarnation = f"{node_id}/{uuid.uuid4().hex[:8]}"
        self._scripts: dict[str, AsyncScript] = {
            name: self._client.register_script(script_text(name)) for name in SCRIPTS
        }
        self._nodes_key = f"{prefix}:nodes"
        self._owned_key = f"{prefix}:presence-node:{self.incarnation}"
        self._alive_key = f"{prefix}:node:{self.incarnation}"
        self._stale = True  # until the first sync: nothing is known to be in Redis

    def _keys(self, workspace_id: str) -> list[str]:
        return [f"{self._prefix}:presence:{workspace_id}",
                f"{self._prefix}:presence-users:{workspace_id}",
                self._owned_key, self._nodes_key]

    async def _run(self, script: str, keys: list[str], *args: str | float) -> Any:
        return await self._scripts[script](keys=keys, args=list(args))

    async def _try(self, script: str, keys: list[str], *args: str | float) -> Any:
        """:meth:`_run`, or None when Redis cannot be reached (logged; the next beat
        that reaches Redis reports this node's entries for a :meth:`sync`)."""
        try:
            return await self._run(script, keys, *args)
        except UNREACHABLE as err:
            self._stale = True
            log.warning("presence: %s skipped, Redis unreachable: %s", script, err)
            return None

    async def join(self, entry: Entry) -> dict[str, Any] | None:
        first = await self._try(
            "presence_join", self._keys(entry.workspace_id), entry.conn_id,
            orjson.dumps(entry.to_json()).decode(), entry.workspace_id, self.incarnation,
            self.ttl_s,
        )
        return entry.user(1) if first == 1 else None

    async def leave(self, workspace_id: str, conn_id: str) -> dict[str, Any] | None:
        last = await self._try("presence_leave", self._keys(workspace_id)[:3], conn_id,
                               workspace_id)
        return None if last is None else Entry.from_json(orjson.loads(last)).user(0)

    async def update(
        self, workspace_id: str, conn_id: str, status: str | None, viewing: str | None,
        viewing_given: bool, call: str | None = None,
    ) -> dict[str, Any] | None:
        changes: dict[str, str | None] = {}
        if status is not None:
            changes["status"] = status
            changes["call"] = call
        if viewing_given:
            changes["viewing"] = viewing
        found = await self._try("presence_update", self._keys(workspace_id)[:1], conn_id,
                                orjson.dumps(changes).decode())
        if found is None:
            return None
        old, new, *others = (Entry.from_json(orjson.loads(json)) for json in found)
        before, after = aggregate([old, *others]), aggregate([new, *others])
        return None if after == before else after[0]

    async def online(self, workspace_id: str) -> list[dict[str, Any]]:
        found = await self._try("presence_online", self._keys(workspace_id)[:1]) or []
        return aggregate([Entry.from_json(orjson.loads(json)) for json in found])

    # ---- liveness -----------------------------------------------------------------------

    async def beat(self) -> bool:
        missing = await self._run("node_beat", [self._alive_key, self._nodes_key],
                                  self.incarnation, int(self.ttl_s * 1000), self.node_id)
        return bool(missing) or self._stale

    async def sync(self, entries: list[Entry]) -> tuple[Gone, Gone]:
        args: list[str | float] = [self._prefix, self.incarnation, self.ttl_s]
        for entry in entries:
            args += [entry.workspace_id, entry.conn_id, orjson.dumps(entry.to_json()).decode()]
        joined, left = await self._run("node_sync", [self._owned_key, self._nodes_key], *args)
        self._stale = False
        return _pairs(joined), _pairs(left)

    async def reap(self) -> Gone:
        return _pairs(await self._run("node_reap", [self._nodes_key], self._prefix,
                                      REAP_BATCH))

    async def close(self) -> None:
        """This node is gone: its liveness key goes, and any entry it still holds (a
        leave that could not reach Redis) is left to the next :meth:`reap` anywhere."""
        try:  # a deadline in the past: the next reap takes whatever is left
            await self._client.delete(self._alive_key)
            await self._client.zadd(self._nodes_key, {self.incarnation: 0})
        except UNREACHABLE as err:
            log.warning("presence: could not remove this node's liveness key: %s", err)
        if self._owns_client:
            await self._client.aclose()


__all__ = ["SCRIPTS", "RedisPresence"]
