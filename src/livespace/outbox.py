"""A connection's bounded queue of outbound frames (pure: no I/O).

Bounded in frames and in bytes. When a push would go past a bound, ephemeral frames
(typing, presence, broadcast) already queued are dropped first, oldest first; only if
durable frames alone are past the bound is the connection too slow, and the caller
closes it with 4009 (its client resumes with ``since`` and loses nothing durable).
"""

from __future__ import annotations

from collections import deque
from enum import Enum


class Push(Enum):
    QUEUED = "queued"
    DROPPED = "dropped"  # an ephemeral frame that did not fit
    OVERFLOW = "overflow"  # a durable frame that did not fit: close with 4009


class Outbox:
    __slots__ = ("_frames", "bytes", "dropped", "ephemeral", "ephemeral_bytes", "max_bytes",
                 "max_frames")

    def __init__(self, max_bytes: int, max_frames: int) -> None:
        # no deque while empty (an idle connection's outbox holds none: a deque is 600 B)
        self._frames: deque[tuple[bytes, bool]] | tuple[()] = ()
        self.max_bytes = max_bytes
        self.max_frames = max_frames
        self.bytes = 0
        self.dropped = 0  # ephemeral frames dropped so far
        self.ephemeral = 0  # ephemeral frames queued, and their bytes
        self.ephemeral_bytes = 0

    def __len__(self) -> int:
        return len(self._frames)

    def push(self, payload: bytes, durable: bool) -> Push:
        size = len(payload)
        if self._fits(size):
            self._append(payload, durable, size)
            return Push.QUEUED
        if not durable:
            self.dropped += 1
            return Push.DROPPED
        # would dropping every queued ephemeral frame make room? if not, do not bother
        if (len(self._frames) - self.ephemeral < self.max_frames
                and self.bytes - self.ephemeral_bytes + size <= self.max_bytes):
            self._drop_ephemeral(size)
            self._append(payload, durable, size)
            return Push.QUEUED
        return Push.OVERFLOW

    def take(self, max_bytes: int = 1 << 20) -> list[bytes]:
        """Pop queued frames in order, at least one, up to about ``max_bytes``."""
        out: list[bytes] = []
        taken = 0
        frames = self._frames
        if not isinstance(frames, deque):
            return out
        while frames and (not out or taken + len(frames[0][0]) <= max_bytes):
            payload, durable = frames.popleft()
            size = len(payload)
            taken += size
            if not durable:
                self.ephemeral -= 1
                self.ephemeral_bytes -= size
            out.append(payload)
        self.bytes -= taken
        if not frames:
            self._frames = ()
        return out

    def clear(self) -> None:
        self._frames = ()
        self.bytes = self.ephemeral = self.ephemeral_bytes = 0

    def _fits(self, size: int) -> bool:
        return len(self._frames) < self.max_frames and self.bytes + size <= self.max_bytes

    def _append(self, payload: bytes, durable: bool, size: int) -> None:
        if not isinstance(self._frames, deque):
            self._frames = deque()
        self._frames.append((payload, durable))
        self.bytes += size
        if not durable:
            self.ephemeral += 1
            self.ephemeral_bytes += size

    def _drop_ephemeral(self, needed: int) -> None:
        """Drop queued ephemeral frames, oldest first, until ``needed`` more bytes fit."""
        count = len(self._frames)
        kept: deque[tuple[bytes, bool]] = deque()
        for payload, durable in self._frames:
            if not durable and (count >= self.max_frames or self.bytes + needed > self.max_bytes):
                size = len(payload)
                self.bytes -= size
                self.ephemeral -= 1
                self.ephemeral_bytes -= size
                self.dropped += 1
                count -= 1
                continue
            kept.append((payload, durable))
        self._frames = kept
