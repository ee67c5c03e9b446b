"""A livespace node: the store, broker, presence, hub and service of one process,
and the background loops that keep them honest."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from livespace.auth import TokenVerifier
from livespace.broker import Broker, open_broker
from livespace.codes import Close
from livespace.config import Settings
from livespace.connection import Connection
from livespace.deadlines import Deadlines
from livespace.hub import Hub
from livespace.limits import Admission, KeyedBuckets
from livespace.limits.cluster import ClusterLimits, LocalLimits
from livespace.liveness import Liveness, timing
from livespace.metrics import Metrics
from livespace.notes.room import NoteLimits
from livespace.notes.rooms import NoteRooms
from livespace.outage import is_outage
from livespace.presence import Presence, open_presence
from livespace.service import Service
from livespace.store import Event, SessionRow, Store, cleanup, open_store

log = logging.getLogger(__name__)

#: With a broker that can lose messages (Redis pub/sub), how often each room's head is
#: compared with the store's: bounds how late an event lost by the broker, and followed
#: by no other, reaches this node's clients. One query for all of this node's rooms.
HEAD_CHECK_S = 1.5
#: How often the gauges and per-connection counters reach the metrics (and every scrape).
METRICS_SAMPLE_S = 5.0
#: How often rooms left empty are looked at (closed after hub.ROOM_LINGER_S).
ROOM_SWEEP_S = 5.0


class Node:
    def __init__(self, settings: Settings, store: Store, broker: Broker,
                 presence: Presence) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker
        self.presence = presence
        self.hub = Hub(store, broker, presence, settings.node_id)
        self.metrics = Metrics.get()
        self.hub.on_delivered = self.metrics.event_delivered
        self.service = Service(store, self.hub, self.metrics)
        self.liveness = Liveness(presence, self.hub, settings.presence_ttl_s,
                                 self.metrics.reaped.inc)
        store.on_commit = self.publish_committed
        self.verifier = TokenVerifier(settings)
        rates = {"user": settings.user_rate_limit, "http": settings.http_rate_limit}
        self.limits: ClusterLimits | LocalLimits = (
            ClusterLimits(settings.redis_url, prefix=settings.redis_prefix,
                          incarnation=getattr(presence, "incarnation", settings.node_id),
                          rates=rates, per_user=settings.max_connections_per_user,
                          per_workspace=settings.max_connections_per_workspace)
            if settings.redis_url else LocalLimits(rates))
        #: failed handshakes (4001) per client IP: past it, refused before any JWT work
        self.auth_failures = KeyedBuckets(settings.auth_failure_rate,
                                          burst=settings.auth_failure_rate * 5)
        self.admission = Admission(settings.max_connections_per_user,
                                   settings.max_connections_per_workspace)
        self.notes = NoteRooms(store, broker, NoteLimits(
            max_update=settings.max_frame,
            max_doc=settings.note_max_bytes,
            awareness_rate=settings.note_awareness_rate,
            compact_updates=settings.note_compact_updates,
        ), self.spawn)
        self.draining = False
        self.deadlines = Deadlines()  # token expiries of every connection, one timer
        self.front: Any = None  # the WebSocket front (livespace.front.Front), set by the app
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._closed_sessions: list[SessionRow] = []
        self._reads_sampled = 0

    @classmethod
    async def start(cls, settings: Settings) -> Node:
        settings = settings.with_secret()
        store = await open_store(settings.database_url)
        await store.migrate()
        broker = await open_broker(settings.redis_url, prefix=settings.redis_prefix)
        presence = open_presence(settings.redis_url, prefix=settings.redis_prefix,
                                 ttl_s=timing(settings.presence_ttl_s)[0],
                                 node_id=settings.node_id)
        node = cls(settings, store, broker, presence)
        await node.hub.start()
        node._loops = [
            node._every(ROOM_SWEEP_S, node.hub.sweep),
            node._every(settings.session_flush_s, node.flush_sessions),
            node._every(settings.cleanup_interval_s, node.cleanup),
            node._every(node.liveness.beat_s, node.beat),
            node._every(node.liveness.reap_s, node.liveness.reap),
            node._every(METRICS_SAMPLE_S, node.sample_metrics),
        ]
        if hasattr(broker, "on_reconnect"):
            broker.on_reconnect = node.on_broker_reconnect
            # a lost event that no later one reveals as a gap comes from the store too
            node._loops.append(node._every(HEAD_CHECK_S, node.hub.check_heads))
        # What startup made (modules, app, settings) lives as long as the process: out of
        # the collector's full passes, which otherwise stop the loop for ~50 ms every few
        # seconds under write load (the durable bench's ack p99 halves).
        gc.collect()
        gc.freeze()
        return node

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, keeping a reference and logging failures."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    def _every(self, seconds: float, job: Callable[[], Awaitable[Any]]) -> asyncio.Task[None]:
        name = getattr(job, "__name__", job)

        async def loop() -> None:
            failures = 0  # logged once with its traceback, then once more on recovery
            while True:
                await asyncio.sleep(seconds)
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    if not failures and is_outage(err):  # expected: no traceback
                        log.warning("periodic %s: store or broker unreachable (%r); "
                                    "retrying every %.1fs", name, err, seconds)
                    elif not failures:
                        log.exception("periodic %s failed (retrying every %.1fs)", name,
                                      seconds)
                    failures += 1
                    continue
                if failures:
                    log.warning("periodic %s works again after %d failures", name, failures)
                    failures = 0

        return asyncio.get_running_loop().create_task(loop())

    async def publish_committed(self, events: list[Event]) -> None:
        """The store's ``on_commit``: each committed batch's events, in seq order, to
        every node's rooms (so this node publishes a workspace's events in seq order)."""
        by_workspace: dict[str, list[Event]] = {}
        for event in events:
            by_workspace.setdefault(event.workspace_id, []).append(event)
        for workspace_id, batch in by_workspace.items():
            await self.hub.publish_events(workspace_id, batch)

    # ---- periodic jobs ------------------------------------------------------------------

    async def save_session(self, conn: Connection) -> None:
        """A closed connection's row goes with the next flush (not one write per close)."""
        conn.dirty = False
        self._closed_sessions.append(conn.session)

    async def flush_sessions(self) -> None:
        """Counters reach the store every few seconds (a crash loses at most that much),
        every changed or closed session in one transaction."""
        dirty = [conn for room in tuple(self.hub.rooms.values())
                 for conn in room.conns.values() if conn.dirty]
        for conn in dirty:
            conn.dirty = False
        rows, self._closed_sessions = self._closed_sessions, []
        try:
            await self.store.save_sessions(rows + [conn.session for conn in dirty])
        except BaseException:
            self._closed_sessions[:0] = rows  # tried again at the next flush
            raise

    async def cleanup(self, retention_days: int | None = None) -> dict[str, int]:
        days = retention_days if retention_days is not None else self.settings.retention_days
        _, counts = await cleanup(self.store, days)
        return counts

    # ---- admission (the workspace socket and the notes socket) ---------------------------

    def throttled(self, client: str) -> bool:
        """Too many failed handshakes from ``client`` lately: refuse before any JWT work."""
        return bool(self.auth_failures.waiting(client, time.monotonic()))

    def auth_failed(self, client: str) -> None:
        self.auth_failures.take(client, time.monotonic())

    async def admit(self, user_id: str, workspace_id: str) -> str | None:
        """Count one more socket of the user and workspace: on this node first, before
        any await (racing handshakes cannot overshoot), then cluster-wide. None when
        admitted (call :meth:`release` when it ends), else why not."""
        refused = self.admission.admit(user_id, workspace_id)
        if refused is None:
            refused = await self.limits.admit(user_id, workspace_id)
            if refused is not None:
                self.admission.release(user_id, workspace_id)
        return refused

    async def release(self, user_id: str, workspace_id: str) -> None:
        self.admission.release(user_id, workspace_id)
        await self.limits.release(user_id, workspace_id)

    async def beat(self) -> None:
        """The liveness beat; the connection counts in Redis are set again whenever they
        may be wrong (the presence entries were, or a limits call failed)."""
        resynced = await self.liveness.beat()
        if resynced or self.limits.stale:
            await self.limits.sync(*self.admission.counts())

    def connections(self) -> list[Connection]:
        return [c for room in self.hub.rooms.values() for c in room.conns.values()]

    async def sample_metrics(self) -> None:
        self.metrics.sample(self.connections(), self.hub.active_rooms)
        reads = self.hub.memberships.reads
        self.metrics.membership_reads.inc(reads - self._reads_sampled)
        self._reads_sampled = reads
        self.metrics.verified_tokens.set(len(self.verifier.verified))

    # ---- broker reconnect ---------------------------------------------------------------

    def on_broker_reconnect(self) -> None:
        """Messages published while the broker was cut off are lost: events come from
        the store, and membership changes are read again from it."""
        self.hub.memberships.clear()
        self.spawn(self.hub.catch_up())
        self.spawn(self.recheck_members())
        self.spawn(self.notes.catch_up())  # note updates other nodes stored meanwhile

    async def recheck_members(self) -> None:
        """Apply removals and role changes whose control messages may have been lost."""
        for room in tuple(self.hub.rooms.values()):
            for user_id in {conn.user_id for conn in room.conns.values()}:
                role = await self.store.role_of(room.workspace_id, user_id)
                if role is None:
                    self.hub.on_control(room, {"kind": "member_removed", "user_id": user_id})
                elif any(c.role != role for c in room.conns.values() if c.user_id == user_id):
                    self.hub.on_control(room, {"kind": "role_changed", "user_id": user_id,
                                               "role": role})

    # ---- stop ---------------------------------------------------------------------------

    async def stop(self) -> None:
        """Drain: every socket closes with 1012 (reconnect elsewhere with since)."""
        self.draining = True
        if self.front is not None:
            self.front.drain()
        await self.hub.close_all(Close.RESTARTING, "server restarting")
        await self.notes.close()
        for task in self._loops:
            task.cancel()
        if self._tasks:  # the closed sockets' sessions end (presence leave, their rows)
            await asyncio.wait(list(self._tasks), timeout=2.0)
        with contextlib.suppress(Exception):
            await self.flush_sessions()
        for task in list(self._tasks):
            task.cancel()
        await self.presence.close()
        await self.limits.close()
        self.store.on_commit = None  # what is still queued commits, unpublished
        await self.broker.close()
        await self.store.close()
        self.metrics.process_exit()
