"""The Redis pub/sub broker: fan-out between the processes and hosts of a cluster.

Channel ``c`` is the Redis channel ``f"{prefix}:{c}"``. Publishing goes through a pooled
client. Receiving uses one dedicated connection per broker, read by one task that calls
the handlers synchronously, in the order Redis delivers (per publisher, publish order).

That connection is driven directly (not through ``redis.asyncio.PubSub``) so that a lost
connection is always seen: the reader logs, backs off (0.1 s doubling to 5 s), opens a
new connection, subscribes every channel again, and then calls :attr:`on_reconnect`.
Messages published while it was down are lost; sequenced consumers fill the gap from the
store. A silent peer is detected by a PING after :data:`IDLE_PING_S` of silence.

A publish that cannot reach Redis is logged and dropped, not raised: the change behind it
is already committed (its writer gets the ack), and the store is how every node recovers
what the broker lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import RedisError

from livespace.broker import Handler

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0
IDLE_PING_S = 15.0
#: A publish waits at most this long for Redis (connect, then reply) before it is dropped.
PUBLISH_TIMEOUT_S = 2.0


class _Subscription:
    __slots__ = ("_active", "_broker", "_channel", "_handler")

    def __init__(self, broker: RedisBroker, channel: bytes, handler: Handler) -> None:
        self._broker = broker
        self._channel = channel
        self._handler = handler
        self._active = True

    async def cancel(self) -> None:
        if self._active:  # the same handler may be subscribed twice: remove this one only
            self._active = False
            await self._broker._remove(self._channel, self._handler)


class RedisBroker:
    """Redis pub/sub :class:`~livespace.broker.Broker`.

    ``connected`` is True while the subscriber connection is up and every channel is
    subscribed. ``on_reconnect`` (if set) is called after a lost connection was
    re-established and all channels re-subscribed: messages may have been missed.
    """

    def __init__(self, url: str, *, prefix: str = "livespace") -> None:
        self._prefix = prefix.encode()
        self._client: aioredis.Redis = aioredis.from_url(
            url, socket_connect_timeout=PUBLISH_TIMEOUT_S, socket_timeout=PUBLISH_TIMEOUT_S
        )
        self._pool: ConnectionPool = ConnectionPool.from_url(
            url, protocol=2, socket_keepalive=True, socket_connect_timeout=5.0,
            client_name=f"{prefix}:subscriber",  # findable in CLIENT LIST
        )
        self._handlers: dict[bytes, list[Handler]] = {}
        # SUBSCRIBEs written on the current connection and not yet confirmed, per channel
        self._unconfirmed: dict[bytes, int] = {}
        self._confirmed = asyncio.Condition()
        self._closed = False
        self._conn: AbstractConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._was_connected = False
        self.connected = False
        self.on_reconnect: Callable[[], None] | None = None

    def _key(self, channel: str) -> bytes:
        return self._prefix + b":" + channel.encode()

    async def start(self) -> None:
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_forever(), name="redis-broker")

    async def publish(self, channel: str, message: bytes) -> None:
        try:
            await self._client.publish(self._key(channel), message)
        except (RedisError, OSError) as err:
            log.warning("redis broker: publish on %s dropped: %s", channel, err)

    async def publish_many(self, channel: str, messages: list[bytes]) -> None:
        """All in one pipelined round trip (not a transaction: order is what matters)."""
        key = self._key(channel)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for message in messages:
                    pipe.publish(key, message)
                await pipe.execute()
        except (RedisError, OSError) as err:
            log.warning("redis broker: %d publishes on %s dropped: %s", len(messages),
                        channel, err)

    async def subscribe(self, channel: str, handler: Handler) -> _Subscription:
        """Add ``handler``; returns once Redis confirmed the channel's subscription."""
        if self._closed:
            raise RuntimeError("broker closed")
        await self.start()
        key = self._key(channel)
        handlers = self._handlers.setdefault(key, [])
        handlers.append(handler)
        if len(handlers) == 1:
            self._unconfirmed[key] = self._unconfirmed.get(key, 0) + 1
            await self._send("SUBSCRIBE", key)
        try:
            async with self._confirmed:
                await self._confirmed.wait_for(
                    lambda: self._closed or key not in self._unconfirmed
                )
            if self._closed:
                raise RuntimeError("broker closed")
        except BaseException:
            await self._remove(key, handler)
            raise
        return _Subscription(self, key, handler)

    async def _remove(self, key: bytes, handler: Handler) -> None:
        handlers = self._handlers.get(key)
        if handlers is None or handler not in handlers:
            return
        handlers.remove(handler)
        if not handlers:
            del self._handlers[key]
            await self._send("UNSUBSCRIBE", key)

    async def _send(self, *args: Any) -> None:
        """Write a command on the subscriber connection if it is up (else the reader
        will (re)subscribe what is in ``_handlers`` when it reconnects)."""
        conn = self._conn
        if conn is None or not conn.is_connected:  # never let a send reconnect it
            return
        try:
            await conn.send_command(*args, check_health=False)
        except Exception as err:  # the reader sees the same failure and reconnects
            log.warning("redis broker: %s failed: %s", args[0], err)

    async def _read_forever(self) -> None:
        backoff = BACKOFF_MIN_S
        while True:
            try:
                await self._read_connection()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if self.connected:  # that connection had worked: start backing off afresh
                    backoff = BACKOFF_MIN_S
                log.warning("redis broker: subscriber connection lost (%s); retry in %.1fs",
                            err, backoff)
            await self._drop_connection()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _read_connection(self) -> None:
        conn: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        self._conn = conn
        await conn.connect()  # type: ignore[no-untyped-call]
        resync = set(self._handlers)
        self._unconfirmed = dict.fromkeys(resync, 1)
        if resync:
            await conn.send_command("SUBSCRIBE", *resync, check_health=False)
        self._mark_ready(resync)
        awaiting_pong = False
        while True:
            reply = await conn.read_response(timeout=IDLE_PING_S)
            if reply is None:  # silence: is the peer still there?
                if awaiting_pong:
                    raise ConnectionError(f"no reply to PING within {IDLE_PING_S}s")
                await conn.send_command("PING", check_health=False)
                awaiting_pong = True
                continue
            awaiting_pong = False
            if isinstance(reply, list) and len(reply) == 3:
                kind, key, data = reply
                if kind == b"message":
                    self._dispatch(key, data)
                elif kind in (b"subscribe", b"unsubscribe"):
                    if kind == b"subscribe":
                        await self._confirm(key)
                    resync.discard(key)
                    self._mark_ready(resync)

    def _dispatch(self, key: bytes, data: bytes) -> None:
        for handler in tuple(self._handlers.get(key, ())):
            try:
                handler(data)
            except Exception:
                log.exception("broker handler failed on channel %r", key)

    async def _confirm(self, key: bytes) -> None:
        left = self._unconfirmed.get(key, 0) - 1
        if left > 0:
            self._unconfirmed[key] = left
            return
        self._unconfirmed.pop(key, None)
        async with self._confirmed:
            self._confirmed.notify_all()

    def _mark_ready(self, resync: set[bytes]) -> None:
        if resync or self.connected:
            return
        self.connected = True
        reconnected, self._was_connected = self._was_connected, True
        if reconnected:
            log.info("redis broker: reconnected, %d channel(s) resubscribed",
                     len(self._handlers))
            if self.on_reconnect is not None:
                try:
                    self.on_reconnect()
                except Exception:
                    log.exception("redis broker: on_reconnect hook failed")

    async def _drop_connection(self) -> None:
        self.connected = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await self._drop_connection()
        self._closed = True
        async with self._confirmed:
            self._confirmed.notify_all()
        self._handlers.clear()
        await self._client.aclose()
        await self._pool.aclose()


__all__ = ["BACKOFF_MAX_S", "BACKOFF_MIN_S", "IDLE_PING_S", "PUBLISH_TIMEOUT_S", "RedisBroker"]
