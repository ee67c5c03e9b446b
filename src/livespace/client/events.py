"""``client.events()``: an iterator of the durable events a client applies."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

#: Events buffered per iterator; a full one holds the socket's reading (backpressure:
#: the server closes a reader too far behind with 4009, and the client resumes).
EVENT_BUFFER = 10_000


class Events:
    """``client.events()``: the durable events applied from its creation on."""

    def __init__(self, subscribers: weakref.WeakSet[Events],
                 error: Callable[[], Exception | None]) -> None:
        """Registered in ``subscribers`` (the client's); ``error``: why the client
        ended, None when it was closed."""
        self._subscribers = subscribers
        self._error = error
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(EVENT_BUFFER)
        subscribers.add(self)

    def __aiter__(self) -> Events:
        return self

    async def __anext__(self) -> dict[str, Any]:
        item = await self.queue.get()
        if item is None:
            self._subscribers.discard(self)
            error = self._error()
            if error is not None:
                raise error
            raise StopAsyncIteration
        return item
