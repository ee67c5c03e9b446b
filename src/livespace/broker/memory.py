"""The in-process broker: one event loop, direct calls, for a single process."""

from __future__ import annotations

import logging

from livespace.broker import Handler

log = logging.getLogger(__name__)


class _Subscription:
    __slots__ = ("_broker", "_channel", "_handler")

    def __init__(self, broker: MemoryBroker, channel: str, handler: Handler) -> None:
        self._broker = broker
        self._channel = channel
        self._handler = handler

    async def cancel(self) -> None:
        handlers = self._broker.channels.get(self._channel)
        if handlers is not None and self._handler in handlers:
            handlers.remove(self._handler)
            if not handlers:
                del self._broker.channels[self._channel]


class MemoryBroker:
    """Delivers synchronously, in publish order, to this process's subscribers."""

    def __init__(self) -> None:
        self.channels: dict[str, list[Handler]] = {}

    async def start(self) -> None:
        return None

    async def publish(self, channel: str, message: bytes) -> None:
        for handler in tuple(self.channels.get(channel, ())):
            try:
                handler(message)
            except Exception:
                log.exception("broker handler failed on channel %s", channel)

    async def publish_many(self, channel: str, messages: list[bytes]) -> None:
        for message in messages:
            await self.publish(channel, message)

    async def subscribe(self, channel: str, handler: Handler) -> _Subscription:
        self.channels.setdefault(channel, []).append(handler)
        return _Subscription(self, channel, handler)

    async def close(self) -> None:
        self.channels.clear()
