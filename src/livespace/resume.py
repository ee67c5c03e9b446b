"""Where a resuming connection starts (pure: no I/O, no asyncio).

A client that connects with ``since=N`` has every durable event up to ``N``. The server
knows three positions: the oldest seq the store still keeps, the store's head, and the
head of the node's room (the last seq delivered live on this node, which may lag the
store by a broker hop). Events after the room's head reach the new connection live;
events from ``N + 1`` to the room's head come from the store first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Replay:
    """Replay the events after ``since`` up to and including ``to_seq`` from the store.

    Compacted: first the events of ``compacted`` (seqs, in order, up to
    ``compacted_to``), then every event after ``compacted_to``.
    """

    since: int
    to_seq: int
    compacted: list[int] | None = None
    compacted_to: int = 0

    @property
    def count(self) -> int:
        """The events the replay sends up to ``to_seq``."""
        if self.compacted is None:
            return max(0, self.to_seq - self.since)
        return len(self.compacted) + self.to_seq - self.compacted_to

    def to_json(self) -> dict[str, Any]:
        """``welcome.replay``: ``count`` 0 (``from_seq`` past ``to_seq``) when at head."""
        out: dict[str, Any] = {"from_seq": self.since + 1, "to_seq": self.to_seq,
                               "count": self.count}
        if self.compacted is not None:
            out["compacted"] = True
        return out


@dataclass(frozen=True, slots=True)
class Resync:
    """``since`` cannot be served exactly: the client reloads state, then follows live."""

    oldest_seq: int


def compacted(plan: Replay, seqs: list[int], store_head: int) -> Replay:
    """``plan`` compacted: the ``seqs`` of a compacted replay of ``(since, store_head]``
    (read before the room's head was), up to what both heads have seen, then every
    event after that (live events are consecutive)."""
    upto = min(plan.to_seq, store_head)
    return Replay(plan.since, plan.to_seq, [seq for seq in seqs if seq <= upto], upto)


def resume(since: int, *, delivered: int, head: int, oldest: int,
           epoch: str | None = None, current: str = "") -> Replay | Resync:
    """The plan for ``since``, given the room's ``delivered`` head, the store's ``head``
    and ``oldest`` kept seq (``head + 1`` when the store keeps none), and the client's
    ``epoch`` (None: it gave none, the ``current`` one is assumed).

    An ``epoch`` other than the ``current`` one (a restored, reset or re-created log),
    ``since`` above the store's head (the same, or a client bug) or negative, or
    older than retention (some event after it is gone): :class:`Resync`. A ``since``
    between the room's head and the store's is served by live delivery alone (the
    events up to ``since`` that are still on their way are ignored as duplicates).
    """
    if (epoch is not None and epoch != current) or since < 0 or since > head or since < oldest - 1:
        return Resync(oldest)
    return Replay(since, max(delivered, since))
