"""Per-user limits for the whole cluster, counted in Redis (atomic Lua scripts in
``lua/``), with this node's own counts as the fallback while Redis cannot be reached.

- Rates (``LIVESPACE_USER_RATE_LIMIT`` frames/s, ``LIVESPACE_HTTP_RATE_LIMIT``
  requests/s, per user): one token bucket per user in Redis, refilled with the Redis
  clock. A node takes tokens in **leases** of a tenth of a second's worth and spends them
  locally, so a busy user costs about ten Redis calls a second per node, not one per
  frame; a user can overshoot the limit by at most one lease per node.
- Connection caps (``LIVESPACE_MAX_CONNECTIONS_PER_USER`` / ``..._PER_WORKSPACE``): one
  hash per user and per workspace, a field per node process (incarnation) with its open
  sockets. A dead node's fields are removed by the same reap that removes its presence
  (``presence/lua/node_reap.lua``); a node whose counts may be wrong (reaped after a
  pause, Redis restarted, a release that failed) sets them again with :meth:`sync`.
- While Redis cannot be reached (and for :data:`RETRY_S` after a failure) the node
  counts on its own, as a single node would (:class:`~livespace.limits.KeyedBuckets`;
  the local caps always apply too): a user spread over N nodes then gets up to N times
  the limits until Redis is back.
"""

from __future__ import annotations

import logging
import time
from importlib.resources import files
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from livespace.limits import KeyedBuckets

log = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
TIMEOUT_S = 1.0
#: After Redis failed, how long the node counts on its own before trying Redis again.
RETRY_S = 1.0
#: A lease is this fraction of a second's tokens, spent locally within LEASE_S.
LEASE_FRACTION = 0.1
LEASE_S = 1.0
MAX_LEASES = 100_000
SCRIPTS = ("rate_take", "conn_admit", "conn_release", "conn_sync")


class ClusterLimits:
    def __init__(self, url: str, *, prefix: str, incarnation: str,
                 rates: dict[str, float], per_user: int, per_workspace: int) -> None:
        self._client: aioredis.Redis = aioredis.from_url(
            url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
        lua = files("livespace.limits") / "lua"
        self._scripts: dict[str, AsyncScript] = {
            name: self._client.register_script((lua / f"{name}.lua").read_text())
            for name in SCRIPTS
        }
        self._prefix = prefix
        self.incarnation = incarnation
        self.rates = rates
        self.per_user = per_user
        self.per_workspace = per_workspace
        self.local = {kind: KeyedBuckets(rate) for kind, rate in rates.items()}
        self._leases: dict[tuple[str, str], list[float]] = {}  # [tokens, until]
        self._down_until = 0.0
        self.stale = True  # counts not known to be in Redis yet: the first beat syncs

    def _counted(self) -> str:
        return f"{self._prefix}:limits-node:{self.incarnation}"

    def _count_keys(self, user_id: str, workspace_id: str) -> list[str]:
        return [f"{self._prefix}:conns-user:{user_id}",
                f"{self._prefix}:conns-ws:{workspace_id}"]

    def _failed(self, what: str, err: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            log.warning("limits: %s counted on this node only, Redis unreachable: %s",
                        what, err)
        self._down_until = time.monotonic() + RETRY_S
        self.stale = True

    def _redis_down(self) -> bool:
        return time.monotonic() < self._down_until

    async def _run(self, script: str, keys: list[str], *args: str | float) -> Any:
        return await self._scripts[script](keys=keys, args=list(args))

    # ---- rates ----------------------------------------------------------------------------

    async def take(self, kind: str, key: str, now: float) -> float:
        """One token of ``kind`` (``user`` frames, ``http`` requests) for ``key``: 0.0
        when allowed, else the seconds to wait."""
        lease = self._leases.get((kind, key))
        if lease is not None and lease[0] >= 1 and now < lease[1]:
            lease[0] -= 1
            return 0.0
        if self._redis_down():
            return self.local[kind].take(key, now)
        rate = self.rates[kind]
        want = max(1, int(rate * LEASE_FRACTION))
        try:
            granted, wait_ms = await self._run("rate_take",
                                               [f"{self._prefix}:rate-{kind}:{key}"],
                                               rate, max(rate, 1.0), want)
        except UNREACHABLE as err:
            self._failed(f"{kind} rate", err)
            return self.local[kind].take(key, now)
        if int(granted) <= 0:
            return int(wait_ms) / 1000
        if len(self._leases) >= MAX_LEASES:
            self._leases = {k: v for k, v in self._leases.items() if v[1] > now}
        self._leases[(kind, key)] = [int(granted) - 1, now + LEASE_S]
        return 0.0

    # ---- connection caps ------------------------------------------------------------------

    async def admit(self, user_id: str, workspace_id: str) -> str | None:
        """Count one more connection cluster-wide; None when admitted, else why not (the
        caller released its local count). Without Redis: admitted (local caps apply)."""
        if self._redis_down():
            self.stale = True
            return None
        try:
            refused = await self._run("conn_admit", [*self._count_keys(user_id, workspace_id),
                                                     self._counted()],
                                      self.incarnation, self.per_user, self.per_workspace)
        except UNREACHABLE as err:
            self._failed("connections", err)
            return None
        if refused == 1:
            return "too many connections for this user"
        if refused == 2:
            return "too many connections for this workspace"
        return None

    async def release(self, user_id: str, workspace_id: str) -> None:
        try:
            await self._run("conn_release", self._count_keys(user_id, workspace_id),
                            self.incarnation)
        except UNREACHABLE as err:
            self._failed("connections", err)

    async def sync(self, users: dict[str, int], workspaces: dict[str, int]) -> None:
        """This node's counts in Redis become exactly ``users`` and ``workspaces``."""
        args: list[str | float] = [self.incarnation]
        for user_id, count in users.items():
            args += [f"{self._prefix}:conns-user:{user_id}", count]
        for workspace_id, count in workspaces.items():
            args += [f"{self._prefix}:conns-ws:{workspace_id}", count]
        await self._run("conn_sync", [self._counted()], *args)
        self.stale = False

    async def close(self) -> None:
        await self._client.aclose()


class LocalLimits:
    """One process, no Redis: every limit counted here (the caps by
    :class:`~livespace.limits.Admission` alone)."""

    stale = False

    def __init__(self, rates: dict[str, float]) -> None:
        self.local = {kind: KeyedBuckets(rate) for kind, rate in rates.items()}

    async def take(self, kind: str, key: str, now: float) -> float:
        return self.local[kind].take(key, now)

    async def admit(self, user_id: str, workspace_id: str) -> str | None:
        return None

    async def release(self, user_id: str, workspace_id: str) -> None:
        return None

    async def sync(self, users: dict[str, int], workspaces: dict[str, int]) -> None:
        return None

    async def close(self) -> None:
        return None
