"""What a connection's :class:`~livespace.session.Session` reads and does, and no more.

The node provides these (a :class:`~livespace.node.Node` is a :class:`Ports`); a session
is typed against this, so what it may touch is written here, not found by reading it.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from livespace.auth import TokenVerifier
    from livespace.broker import Broker
    from livespace.config import Settings
    from livespace.connection import Connection
    from livespace.deadlines import Deadlines
    from livespace.hub import Hub
    from livespace.limits.cluster import ClusterLimits, LocalLimits
    from livespace.liveness import Liveness
    from livespace.metrics import Metrics
    from livespace.presence import Presence
    from livespace.service import Service
    from livespace.store import Store


class Ports(Protocol):
    """Reads: the settings, the log (position, replay pages, cursors), who is online.
    Does: mutations through the service, fan-out through the hub, presence and its
    liveness, rate limits, token checks and expiries, metrics, background tasks, the
    session row."""

    settings: Settings
    store: Store
    hub: Hub
    service: Service
    presence: Presence
    liveness: Liveness
    limits: ClusterLimits | LocalLimits
    verifier: TokenVerifier
    metrics: Metrics
    deadlines: Deadlines
    broker: Broker

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, its failure logged."""

    async def save_session(self, conn: Connection) -> None:
        """Write the connection's session row."""
