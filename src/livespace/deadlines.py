"""Many deadlines on one timer: the node arms a single timer for the earliest of them.

Used for token expiry (4010): a connection holds a small heap entry instead of an event
loop timer of its own. Times are wall-clock (``exp`` is a Unix time).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Deadline:
    __slots__ = ("callback", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback: Callable[[], object] | None = callback

    def cancel(self) -> None:
        self.callback = None


class Deadlines:
    """``add(when, callback)``; callbacks run in deadline order, each once, unless
    cancelled."""

    __slots__ = ("_heap", "_order", "_timer", "_timer_at")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")

    def add(self, when: float, callback: Callable[[], object]) -> Deadline:
        deadline = Deadline(when, callback)
        heapq.heappush(self._heap, (when, next(self._order), deadline))
        if when < self._timer_at:
            self._arm(when)
        return deadline

    def __len__(self) -> int:
        return len(self._heap)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, when - time.time()), self._fire)

    def _fire(self) -> None:
        self._timer, self._timer_at = None, float("inf")
        heap, now = self._heap, time.time()
        while heap and heap[0][0] <= now:
            deadline = heapq.heappop(heap)[2]
            callback, deadline.callback = deadline.callback, None
            if callback is not None:
                try:
                    callback()
                except Exception:
                    log.exception("deadline callback failed")
        while heap and heap[0][2].callback is None:
            heapq.heappop(heap)  # cancelled ones at the top go now, the rest when due
        if heap:
            self._arm(heap[0][0])
