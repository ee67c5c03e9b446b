"""A resuming connection's replay from the store, then live (socket and SSE alike).

:func:`run` pushes what a connection missed, from a :class:`~livespace.resume.Replay`
plan, into its bounded outbox, each event when the outbox has room (a replay of 100,000
events holds about one page in memory and waits for a slow reader instead of dropping
it), and switches the connection to live delivery in the same step as it catches up
with its room, so that the next event the room delivers is the next one it needs.

Until then the room's deliveries to the connection are dropped: every event the room
delivered is in the store, and the replay reads on to the room's head, past ``to_seq``
if it moved meanwhile. An event missing from the store (deleted by a cleanup since the
plan was made) closes with 4009: the client reconnects with ``since`` and is told
``resync_required``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from livespace.codes import Close
from livespace.hub import REPLAY_PAGE
from livespace.jsoncodec import dumpb
from livespace.resume import Replay, resume

if TYPE_CHECKING:
    from livespace.connection import Connection
    from livespace.hub import Room
    from livespace.metrics import Metrics
    from livespace.store import Event, Position, Store

log = logging.getLogger(__name__)

PAGE = REPLAY_PAGE  # events read from the store at a time


async def compacted_seqs(store: Store, workspace_id: str, since: int, position: Position,
                         epoch: str | None) -> list[int] | None:
    """The seqs of a compacted replay after ``since`` up to the store's head, or None
    when ``since`` will not be replayed at all (a resync)."""
    if not isinstance(resume(since, delivered=position.head, oldest=position.oldest,
                             head=position.head, epoch=epoch, current=position.epoch), Replay):
        return None
    return await store.compacted_seqs(workspace_id, since, position.head)


def gone(conn: Connection) -> bool:
    return conn.close_code is not None or conn.closed


async def run(conn: Connection, store: Store, room: Room, plan: Replay,
              metrics: Metrics) -> None:
    """The replay of ``plan`` (compacted first, if it is), then live."""
    started = time.monotonic()
    since = plan.since
    if plan.compacted is not None:
        if not await _compacted(conn, store, plan.compacted, metrics):
            return
        since = plan.compacted_to
    await _log(conn, store, room, since, plan.to_seq, metrics)
    metrics.replay.observe(time.monotonic() - started)


def _push(conn: Connection, event: Event, metrics: Metrics) -> None:
    if not conn.first_seq:
        conn.first_seq = event.seq
    conn.last_seq = event.seq
    conn.session.events_delivered += 1
    conn.push(dumpb(event.frame()), durable=True)
    metrics.replayed.inc()


def _expired(conn: Connection, cursor: int) -> None:
    log.info("connection %s: events after %d expired during its replay", conn.id, cursor)
    conn.close(Close.TOO_SLOW, "events expired during replay: reconnect with since")


async def _compacted(conn: Connection, store: Store, seqs: list[int],
                     metrics: Metrics) -> bool:
    """The events of a compacted replay (their seqs chosen with the plan), in pages;
    False when the connection closed meanwhile."""
    for start in range(0, len(seqs), PAGE):
        wanted = seqs[start:start + PAGE]
        page = await store.events_at(conn.workspace_id, wanted)
        if [event.seq for event in page] != wanted:
            _expired(conn, wanted[0] - 1)
            return False
        for event in page:
            await conn.room()
            if gone(conn):
                return False
            _push(conn, event, metrics)
    return not gone(conn)


async def _log(conn: Connection, store: Store, room: Room, since: int, to_seq: int,
               metrics: Metrics) -> None:
    """Every event after ``since`` until caught up with the room, then live."""
    cursor = conn.last_seq = since
    while not gone(conn):
        target = max(to_seq, room.head)
        if cursor >= target:
            conn.live = True  # nothing awaited since room.head was read
            return
        page = await store.events_after(conn.workspace_id, cursor, min(PAGE, target - cursor))
        if not page or page[0].seq != cursor + 1:
            _expired(conn, cursor)
            return
        for event in page:
            await conn.room()
            if gone(conn) or event.seq != cursor + 1:
                break  # closed, or a hole: the next page read tells which
            cursor = event.seq
            _push(conn, event, metrics)
