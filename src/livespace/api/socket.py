"""``GET /ws/workspace/{id}``: authenticate, admit, then pump frames to the session.

Refusals after the upgrade complete the handshake and close at once, before any data
frame, with the documented code; a disallowed browser Origin is refused with HTTP 403
before the upgrade (the cross-site WebSocket hijacking defence). Every admission,
refusal and close is one line on the ``livespace.audit`` logger (never the token).
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from livespace.auth import AuthError, Principal, token_from, wants_subprotocol
from livespace.codes import Close, Problem
from livespace.connection import Connection
from livespace.node import Node
from livespace.outage import is_outage
from livespace.session import Session
from livespace.wire import RawSocket

log = logging.getLogger(__name__)
audit = logging.getLogger("livespace.audit")
router = APIRouter()


class SocketTransport:
    """Starlette's WebSocket as a :class:`livespace.connection.Transport`."""

    __slots__ = ("_ws",)

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def send(self, text: str) -> None:
        await self._ws.send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str = "") -> None:
        await self._ws.close(code, reason)


def _since(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return -1  # answered with resync_required, like any other unusable position


@router.websocket("/ws/workspace/{workspace_id}")
async def workspace_socket(websocket: WebSocket, workspace_id: str) -> None:
    node: Node = websocket.app.state.node
    settings = node.settings
    headers = websocket.headers
    origin = headers.get("origin")
    client = websocket.client.host if websocket.client else "-"
    if settings.allowed_origins and origin is not None and origin not in settings.allowed_origins:
        audit.info("socket refused origin=%.100r workspace=%.64r client=%s status=403",
                   origin, workspace_id, client)
        await websocket.close(Close.FORBIDDEN)  # before accept: the client sees HTTP 403
        return
    subprotocol = wants_subprotocol(headers)
    user_id = "-"

    async def refuse(code: int, reason: str) -> None:
        audit.info("socket refused user=%s workspace=%.64r client=%s code=%d reason=%r",
                   user_id, workspace_id, client, code, reason)
        await websocket.accept(subprotocol=subprotocol)
        await websocket.close(code, reason)

    if node.draining:
        await refuse(Close.RESTARTING, "server restarting")
        return
    token = token_from(headers, websocket.query_params)
    if token is None:
        await refuse(Close.UNAUTHORIZED, "missing token")
        return
    if node.throttled(client):
        # a flood of bad tokens from one address costs no JWT work (docs/security.md)
        await refuse(Close.POLICY, "too many failed handshakes from this address")
        return
    try:
        principal = await node.verifier.verify(token)
    except AuthError as err:
        node.auth_failed(client)
        await refuse(Close.UNAUTHORIZED, f"unauthorized: {err}"[:120])
        return
    user_id = principal.user_id
    if await node.limits.take("http", user_id, time.monotonic()):
        # a handshake is an HTTP request: reconnect storms share the per-user HTTP limit
        await refuse(Close.POLICY, "too many connection attempts")
        return
    try:
        role = await node.service.role(workspace_id, user_id)
    except Problem:
        await refuse(Close.FORBIDDEN, "forbidden")
        return
    except Exception as err:
        if not is_outage(err):
            raise
        await refuse(Close.RESTARTING, "store unavailable: reconnect later")
        return
    refused = await node.admit(user_id, workspace_id)
    if refused is not None:
        await refuse(Close.POLICY, refused)
        return
    try:
        await _serve(websocket, node, principal, workspace_id, role, subprotocol, client)
    finally:
        await node.release(user_id, workspace_id)


async def _serve(websocket: WebSocket, node: Node, principal: Principal, workspace_id: str,
                 role: str, subprotocol: str | None, client: str) -> None:
    settings = node.settings
    await websocket.accept(subprotocol=subprotocol)
    conn = Connection(
        workspace_id=workspace_id,
        principal=principal,
        role=role,
        transport=SocketTransport(websocket),
        node=settings.node_id,
        batch=websocket.query_params.get("batch") == "1",
        max_bytes=settings.send_queue_bytes,
        max_frames=settings.send_queue_frames,
        raw=RawSocket.of(websocket.scope),
        flusher=node.hub.flusher,
        close_grace_s=settings.close_grace_s,
    )
    session = Session(node, conn)
    audit.info("socket opened conn=%s user=%s workspace=%s role=%s client=%s", conn.id,
               principal.user_id, workspace_id, role, client)
    try:
        # the session row is written by the periodic flush (within LIVESPACE_SESSION_FLUSH_S)
        # and on close: not on the handshake's path
        query = websocket.query_params
        await session.open(_since(query.get("since")), query.get("epoch") or None,
                           query.get("compact") == "1")
        await _recheck_membership(node, conn)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                conn.session.close_code = conn.session.close_code or message.get("code")
                break
            if conn.close_code is not None:
                continue  # closing: what still arrives is not processed
            text = message.get("text")
            if text is None:
                await session.handle(message.get("bytes") or b"", binary=True)
            else:
                await session.handle(text)
    except WebSocketDisconnect as exc:
        conn.session.close_code = conn.session.close_code or exc.code
    except Exception as err:
        if is_outage(err):  # the store went away during the welcome or replay
            conn.close(Close.RESTARTING, "store unavailable: reconnect with since")
        else:
            log.exception("connection %s failed", conn.id)
    finally:
        await session.close()
        s = conn.session
        audit.info("socket closed conn=%s user=%s workspace=%s code=%s in=%d out=%d "
                   "seconds=%.1f", conn.id, principal.user_id, workspace_id, s.close_code,
                   s.messages_in, s.messages_out, time.monotonic() - conn.opened)


async def _recheck_membership(node: Node, conn: Connection) -> None:
    """A membership change between the admission check and joining the room reached no
    one: look again now that revocations reach this connection."""
    try:
        role = await node.service.role(conn.workspace_id, conn.user_id)
    except Problem:
        conn.close(Close.FORBIDDEN, "membership revoked")
        return
    if role != conn.role:
        conn.role = role
        conn.send({"type": "role_changed", "workspace_id": conn.workspace_id, "role": role})
