"""Compacted replay: what a client far behind needs, in proportion to what changed.

A contact event is superseded by any later event of the same contact (its ``data`` is
the whole contact, or its tombstone), so a client that applies contact events as
upserts by ``version`` needs, of everything after ``since``, only each contact's latest
event, plus every event that is not a contact's (notes), in ``seq`` order.

Each contact row keeps the ``seq`` of its latest event (written with the contact by the
batch, migration ``0002_compaction``), so the contacts changed after ``since`` are an
index range on ``contacts (workspace_id, seq)``; the other events are an index range
on the partial index ``events_uncompacted``. Neither reads the superseded events.
"""

from __future__ import annotations

import functools

from livespace.store.db import Db
from livespace.store.model import Event
from livespace.store.rows import event_of

# CONTACT_EVENTS: the events one later event of the same contact supersedes (keep in step
# with the partial index ``events_uncompacted`` of migration 0002_compaction)

_SEQS = (
    "SELECT seq FROM contacts WHERE workspace_id = $1 AND seq > $2 AND seq <= $3"
    " UNION ALL SELECT seq FROM events WHERE workspace_id = $1 AND seq > $2 AND seq <= $3"
    " AND type NOT IN ('contact_created', 'contact_updated', 'contact_deleted')"
    " ORDER BY seq LIMIT $4"
)
_ALL = 2**62  # LIMIT: no limit (a parameter in both dialects)
_EVENT = ("SELECT workspace_id, seq, event_id, type, actor_id, actor_name, data, created_at"
          " FROM events")
_PG_EVENTS_AT = _EVENT + " WHERE workspace_id = $1 AND seq = ANY($2::bigint[]) ORDER BY seq"


@functools.lru_cache(maxsize=16)
def _events_at_sql(count: int) -> str:
    """SQLite: the events of ``$1`` among ``count`` seqs."""
    marks = ", ".join(f"${n}" for n in range(2, 2 + count))
    return _EVENT + f" WHERE workspace_id = $1 AND seq IN ({marks}) ORDER BY seq"


class Compaction:
    """The part of :class:`~livespace.store.sql.SqlStore` for compacted replay."""

    db: Db

    async def compacted_seqs(self, workspace_id: str, since: int, upto: int,
                             limit: int | None = None) -> list[int]:
        """The seqs in ``(since, upto]`` of a compacted replay, in order (at most
        ``limit``): each contact's latest event if it is in that range, and every
        event that is not a contact's. A contact whose latest event is past ``upto``
        is left out: that event comes after ``upto``, and supersedes the rest."""
        rows = await self.db.fetchall(_SEQS, workspace_id, since, upto,
                                      _ALL if limit is None else limit)
        return [int(r["seq"]) for r in rows]

    async def events_at(self, workspace_id: str, seqs: list[int]) -> list[Event]:
        """The events with these seqs that are still kept, in seq order."""
        if not seqs:
            return []
        if self.db.dialect == "postgres":
            rows = await self.db.fetchall(_PG_EVENTS_AT, workspace_id, seqs)
        else:
            size = 1 << (len(seqs) - 1).bit_length()  # few distinct statements
            padded = seqs + seqs[-1:] * (size - len(seqs))
            rows = await self.db.fetchall(_events_at_sql(size), workspace_id, *padded)
        return [event_of(r) for r in rows]
