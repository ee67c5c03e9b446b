"""``GET /metrics`` through ``prometheus-client``: node-lifetime counters that only go
up, gauges of what is open now, and histograms of commit, fan-out and replay latency.

One process: the default registry. ``serve --workers N``: each worker is a node of its
own; :func:`prepare_multiprocess` (called before the workers start) points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory, every worker writes its values there
and a scrape of any worker sums them all (gauges: the sum over live workers).

Per-connection figures (frames in and out, ephemeral frames dropped) are counted by
the connection itself; :meth:`Metrics.sample` moves what each connection added since
its last sample into the counters, at every scrape, every few seconds and when the
connection closes, so a closing socket never makes a counter go down.
"""

from __future__ import annotations

import calendar
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as mp

if TYPE_CHECKING:
    from livespace.connection import Connection

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REPLAY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def prepare_multiprocess(data_dir: Path) -> None:
    """Before ``--workers`` start: an empty directory for their metric files."""
    path = data_dir / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)


def _multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    """The node's metrics, registered once per process."""

    _instance: Metrics | None = None

    def __init__(self) -> None:
        live = {"multiprocess_mode": "livesum"}
        self.connections = Gauge("livespace_connections", "Open WebSocket connections.",
                                 **live)  # type: ignore[arg-type]
        self.workspaces = Gauge("livespace_workspaces", "Workspaces with a connection here.",
                                **live)  # type: ignore[arg-type]
        self.outbox_bytes = Gauge("livespace_outbox_bytes", "Bytes waiting in outboxes.",
                                  **live)  # type: ignore[arg-type]
        self.opened = Counter("livespace_connections_opened",
                              "WebSocket connections admitted (node lifetime).")
        self.closed = Counter("livespace_connections_closed",
                              "WebSocket connections ended, by close code.", ["code"])
        self.messages_in = Counter("livespace_messages_in", "Client messages received.")
        self.messages_out = Counter("livespace_messages_out", "Frames queued to clients.")
        self.dropped = Counter("livespace_frames_dropped",
                               "Ephemeral frames dropped for slow clients.")
        self.mutations = Counter("livespace_mutations",
                                 "Mutations answered, by outcome (ack or error code).",
                                 ["outcome"])
        self.reaped = Counter("livespace_presence_reaped",
                              "Users whose leave this node announced for a dead node.")
        self.commit = Histogram("livespace_commit_seconds",
                                "A mutation from submit to answer (queue, commit, publish).",
                                buckets=LATENCY_BUCKETS)
        self.fanout = Histogram("livespace_fanout_seconds",
                                "A durable event from its commit to this node's connections "
                                "(across nodes: includes clock skew).",
                                buckets=LATENCY_BUCKETS)
        self.replay = Histogram("livespace_replay_seconds",
                                "A resumed connection's replay, from welcome to live.",
                                buckets=REPLAY_BUCKETS)
        self.replayed = Counter("livespace_replayed_events", "Events sent by replays.")
        self.front_sockets = Counter(
            "livespace_front_sockets", "WebSockets the front served, by path kind "
            "(workspace: the raw path; asgi: handed to the app).", ["path"])
        self.membership_reads = Counter(
            "livespace_membership_reads",
            "Memberships read from the store (the node's membership cache missed).")
        self.verified_tokens = Gauge("livespace_verified_tokens",
                                     "Verified tokens this node keeps until their exp.",
                                     **live)  # type: ignore[arg-type]
        self._reported: dict[str, tuple[int, int, int]] = {}
        self._second = b""
        self._epoch = 0

    @classmethod
    def get(cls) -> Metrics:
        """The process's metrics (a node restarted in the same process reuses them)."""
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def sample(self, conns: Iterable[Connection], workspaces: int) -> None:
        """Gauges now; what each connection counted since its last sample into the
        counters."""
        total = outbox = 0
        for conn in conns:
            total += 1
            outbox += conn.outbox.bytes
            self._move(conn)
        self.connections.set(total)
        self.workspaces.set(workspaces)
        self.outbox_bytes.set(outbox)

    def _move(self, conn: Connection) -> tuple[int, int, int]:
        session = conn.session
        now = (session.messages_in, session.messages_out, conn.outbox.dropped)
        before = self._reported.get(conn.id, (0, 0, 0))
        self.messages_in.inc(now[0] - before[0])
        self.messages_out.inc(now[1] - before[1])
        self.dropped.inc(now[2] - before[2])
        self._reported[conn.id] = now
        return now

    def connection_closed(self, conn: Connection) -> None:
        self._move(conn)
        del self._reported[conn.id]
        self.closed.labels(str(conn.session.close_code or conn.close_code or "")).inc()

    def event_delivered(self, frame: bytes) -> None:
        """Fan-out latency from the event's ``ts`` (commit time, ms, UTC) to now."""
        at = frame.find(b'"ts":"')
        if at < 0:
            return
        second, millis = frame[at + 6:at + 25], frame[at + 26:at + 29]  # ...T03:04:05.678
        try:
            if second != self._second:  # parsed once per second of timestamps
                self._epoch = calendar.timegm(time.strptime(second.decode(),
                                                            "%Y-%m-%dT%H:%M:%S"))
                self._second = second
            committed = self._epoch + int(millis) / 1000
        except ValueError:
            return
        self.fanout.observe(max(0.0, time.time() - committed))

    def render(self) -> tuple[bytes, str]:
        if _multiprocess():
            registry = CollectorRegistry()
            mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(), CONTENT_TYPE_LATEST

    @staticmethod
    def process_exit() -> None:
        if _multiprocess():
            mp.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
