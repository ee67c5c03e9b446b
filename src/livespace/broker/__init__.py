"""Fan-out of workspace messages between the processes of a cluster.

:class:`Broker` is the one interface; :func:`open_broker` picks the engine from the URL:
no URL means the in-process :class:`~livespace.broker.memory.MemoryBroker`,
``redis://...`` the Redis pub/sub one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

Handler = Callable[[bytes], None]


class Subscription(Protocol):
    async def cancel(self) -> None:
        """Stop delivery to this subscription's handler; idempotent."""


class Broker(Protocol):
    """Publish/subscribe on named channels (one channel per workspace).

    Contract (``tests/integration/test_broker_contract.py`` runs it on every engine):

    - :meth:`publish` delivers ``message`` to every handler subscribed to ``channel``
      when it is published, on every node, this one included, at most once each.
    - Messages published by one node on one channel reach each subscriber in the order
      they were published. Across nodes there is no order: sequenced consumers
      (the hub) reorder by ``seq`` and fill gaps from the store.
    - Nothing is stored: a handler that subscribes after a publish does not get it.
    - Handlers run on the event loop and must not block or raise; a handler that raises
      is logged and does not stop delivery to others.
    - :meth:`subscribe` returns once the subscription is active: a message published
      after it returns is delivered.
    - :meth:`publish` does not raise when the broker is unreachable: the message is lost,
      like one missed by a cut-off subscriber (consumers recover from the store).
    """

    async def start(self) -> None: ...
    async def publish(self, channel: str, message: bytes) -> None: ...
    async def publish_many(self, channel: str, messages: list[bytes]) -> None:
        """:meth:`publish` of each message, in order; one round trip where the engine
        allows (a committed batch of events)."""
        ...

    async def subscribe(self, channel: str, handler: Handler) -> Subscription: ...
    async def close(self) -> None: ...


async def open_broker(url: str | None, *, prefix: str = "livespace") -> Broker:
    """Start the broker for ``url`` (None: in-process)."""
    broker: Broker
    if not url:
        from livespace.broker.memory import MemoryBroker

        broker = MemoryBroker()
    elif url.startswith(("redis://", "rediss://", "unix://")):
        from livespace.broker.redis import RedisBroker

        broker = RedisBroker(url, prefix=prefix)
    else:
        raise ValueError(f"unsupported REDIS_URL scheme: {url.split(':', 1)[0]!r}")
    await broker.start()
    return broker


__all__ = ["Awaitable", "Broker", "Handler", "Subscription", "open_broker"]
