"""``GET /ws/workspace/{id}``: authenticate, admit, then hand frames to the session.

Served by the front (:mod:`livespace.front`) on the raw path: no ASGI scope, no
framework object and no task per connection once it is open. Refusals after the
upgrade complete the handshake and close at once, before any data frame, with the
documented code; a disallowed browser Origin is refused with HTTP 403 before the upgrade
(the cross-site WebSocket hijacking defence). Every admission, refusal and close is one
line on the ``livespace.audit`` logger (never the token).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from websockets.http11 import Request

from livespace.auth import AuthError, token_from, wants_subprotocol
from livespace.codes import Close, Problem
from livespace.connection import Connection
from livespace.outage import is_outage
from livespace.session import Session

if TYPE_CHECKING:
    from livespace.front import FrontProtocol
    from livespace.node import Node

log = logging.getLogger(__name__)
audit = logging.getLogger("livespace.audit")

#: Client messages waiting for their session; past it the socket stops reading.
INBOX_MAX = 64
_NO_INBOX: deque[str | bytes] = deque(maxlen=0)  # shared while a socket has none waiting


def _since(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return -1  # answered with resync_required, like any other unusable position


class WorkspaceSocket:
    """One workspace socket: its admission, then its messages in order to its session."""

    __slots__ = ("_admitted", "_ended", "_inbox", "_pump", "conn", "node", "peer_code",
                 "proto", "session")

    def __init__(self, node: Node, proto: FrontProtocol, request: Request,
                 workspace_id: str, query: str) -> None:
        self.node = node
        self.proto = proto
        self.conn: Connection | None = None
        self.session: Session | None = None
        self._inbox: deque[str | bytes] = _NO_INBOX  # a deque of its own once one is due
        self._pump: asyncio.Task[None] | None = None
        self._admitted = False
        self._ended = False
        self.peer_code = 1006
        node.spawn(self._open(request, workspace_id, dict(parse_qsl(query))))

    # ---- admission ----------------------------------------------------------------------

    async def _open(self, request: Request, workspace_id: str, query: dict[str, str]) -> None:
        node, proto = self.node, self.proto
        settings = node.settings
        headers = request.headers
        origin = headers.get("origin")
        client = proto.peer.rpartition(":")[0] or "-"
        if settings.allowed_origins and origin is not None and (
                origin not in settings.allowed_origins):
            audit.info("socket refused origin=%.100r workspace=%.64r client=%s status=403",
                       origin, workspace_id, client)
            proto.reject(403, "Origin not allowed.\n")
            return
        subprotocol = wants_subprotocol(headers)
        user_id = "-"

        def refuse(code: int, reason: str) -> None:
            audit.info("socket refused user=%s workspace=%.64r client=%s code=%d reason=%r",
                       user_id, workspace_id, client, code, reason)
            if proto.accept(request, subprotocol):
                proto.close(code, reason)

        if node.draining:
            refuse(Close.RESTARTING, "server restarting")
            return
        token = token_from(headers, query)
        if token is None:
            refuse(Close.UNAUTHORIZED, "missing token")
            return
        if node.throttled(client):
            # a flood of bad tokens from one address costs no JWT work (docs/security.md)
            refuse(Close.POLICY, "too many failed handshakes from this address")
            return
        try:
            principal = await node.verifier.verify(token)
        except AuthError as err:
            node.auth_failed(client)
            refuse(Close.UNAUTHORIZED, f"unauthorized: {err}"[:120])
            return
        user_id = principal.user_id
        if await node.limits.take("http", user_id, time.monotonic()):
            # a handshake is an HTTP request: reconnect storms share the per-user HTTP limit
            refuse(Close.POLICY, "too many connection attempts")
            return
        try:
            role = await node.service.role(workspace_id, user_id)
        except Problem:
            refuse(Close.FORBIDDEN, "forbidden")
            return
        except Exception as err:
            if not is_outage(err):
                raise
            refuse(Close.RESTARTING, "store unavailable: reconnect later")
            return
        refused = await node.admit(user_id, workspace_id)
        if refused is not None:
            refuse(Close.POLICY, refused)
            return
        self._admitted = True
        if not proto.accept(request, subprotocol):
            await node.release(user_id, workspace_id)
            self._admitted = False
            return
        conn = self.conn = Connection(
            workspace_id=workspace_id,
            principal=principal,
            role=role,
            wire=proto,
            node=settings.node_id,
            flusher=node.hub.flusher,
            batch=query.get("batch") == "1",
            max_bytes=settings.send_queue_bytes,
            max_frames=settings.send_queue_frames,
            close_grace_s=settings.close_grace_s,
        )
        session = Session(node, conn)
        audit.info("socket opened conn=%s user=%s workspace=%s role=%s client=%s", conn.id,
                   principal.user_id, workspace_id, role, client)
        try:
            # the session row is written by the periodic flush (within
            # LIVESPACE_SESSION_FLUSH_S) and on close: not on the handshake's path
            await session.open(_since(query.get("since")), query.get("epoch") or None,
                               query.get("compact") == "1")
            await self._recheck_membership(conn)
        except Exception as err:
            if not is_outage(err):  # else: the store went away during the welcome
                log.exception("connection %s failed to open", conn.id)
            conn.close(Close.RESTARTING, "store unavailable: reconnect with since")
        self.session = session
        if self._ended:
            node.spawn(self._close())
        elif self._inbox:
            self._start_pump()

    async def _recheck_membership(self, conn: Connection) -> None:
        """A membership change between the admission check and joining the room reached no
        one: look again now that revocations reach this connection."""
        try:
            role = await self.node.service.role(conn.workspace_id, conn.user_id)
        except Problem:
            conn.close(Close.FORBIDDEN, "membership revoked")
            return
        if role != conn.role:
            conn.role = role
            conn.send({"type": "role_changed", "workspace_id": conn.workspace_id,
                       "role": role})

    # ---- messages -----------------------------------------------------------------------

    def on_message(self, data: str | bytes) -> None:
        conn = self.conn
        if conn is None or conn.close_code is not None:
            self._inbox.clear()
            self.proto.resume_reading()
            return  # closing (or refused): what still arrives is not processed
        if self._inbox is _NO_INBOX:
            self._inbox = deque()
        self._inbox.append(data)
        if self.session is not None and self._pump is None:
            self._start_pump()
        if len(self._inbox) >= INBOX_MAX:
            self.proto.pause_reading()

    def _start_pump(self) -> None:
        self._pump = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """The session handles the messages one after the other, in the order received."""
        inbox, session, conn = self._inbox, self.session, self.conn
        assert session is not None and conn is not None
        try:
            while inbox:
                if conn.close_code is not None:
                    # closing: the rest is not processed, but the peer's close frame
                    # must still be read
                    inbox.clear()
                    self.proto.resume_reading()
                    break
                data = inbox.popleft()
                if len(inbox) == INBOX_MAX // 2:
                    self.proto.resume_reading()
                if isinstance(data, str):
                    await session.handle(data)
                else:
                    await session.handle(data, binary=True)
        except Exception:
            log.exception("connection %s failed", conn.id)
        finally:
            self._pump = None
            if not self._inbox:
                self._inbox = _NO_INBOX

    # ---- end ----------------------------------------------------------------------------

    def on_end(self, code: int) -> None:
        if self._ended:
            return
        self._ended = True
        self.peer_code = code
        conn = self.conn
        if conn is not None:
            conn.session.close_code = conn.session.close_code or code
        # without a session, _open releases the admission itself when accept fails
        if self.session is not None:
            self.node.spawn(self._close())

    async def _close(self) -> None:
        conn, session = self.conn, self.session
        assert conn is not None and session is not None
        conn.lost()
        pump = self._pump
        if pump is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(pump), 5.0)
            if not pump.done():
                pump.cancel()
        try:
            await session.close()
        finally:
            await self.node.release(conn.user_id, conn.workspace_id)
            s = conn.session
            audit.info("socket closed conn=%s user=%s workspace=%s code=%s in=%d out=%d "
                       "seconds=%.1f", conn.id, conn.user_id, conn.workspace_id,
                       s.close_code, s.messages_in, s.messages_out,
                       time.monotonic() - conn.opened)
