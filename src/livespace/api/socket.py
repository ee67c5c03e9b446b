"""``GET /ws/workspace/{id}``: authenticate, admit, then pump frames to the session.

Refusals after the upgrade complete the handshake and close at once, before any data
frame, with the documented code; a disallowed browser Origin is refused with HTTP 403
before the upgrade (the cross-site WebSocket hijacking defence).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from livespace.auth import AuthError, token_from, wants_subprotocol
from livespace.codes import Close, Error, Problem
from livespace.connection import Connection
from livespace.node import Node
from livespace.protocol import error_frame
from livespace.session import Session
from livespace.wire import RawSocket

log = logging.getLogger(__name__)
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
    if settings.allowed_origins and origin is not None and origin not in settings.allowed_origins:
        await websocket.close(Close.FORBIDDEN)  # before accept: the client sees HTTP 403
        return
    subprotocol = wants_subprotocol(headers)

    async def refuse(code: int, reason: str) -> None:
        await websocket.accept(subprotocol=subprotocol)
        await websocket.close(code, reason)

    if node.draining:
        await refuse(Close.RESTARTING, "server restarting")
        return
    token = token_from(headers, websocket.query_params)
    if token is None:
        await refuse(Close.UNAUTHORIZED, "missing token")
        return
    try:
        principal = await node.verifier.verify(token)
    except AuthError as err:
        await refuse(Close.UNAUTHORIZED, f"unauthorized: {err}"[:120])
        return
    try:
        role = await node.service.role(workspace_id, principal.user_id)
    except Problem:
        await refuse(Close.FORBIDDEN, "forbidden")
        return
    if node.hub.count_user(principal.user_id) >= settings.max_connections_per_user:
        await refuse(Close.POLICY, "too many connections for this user")
        return
    room = node.hub.rooms.get(workspace_id)
    if room is not None and len(room.conns) >= settings.max_connections_per_workspace:
        await refuse(Close.POLICY, "too many connections for this workspace")
        return

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
    )
    session = Session(node, conn)
    try:
        await node.save_session(conn)
        await session.open(_since(websocket.query_params.get("since")))
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                conn.session.close_code = conn.session.close_code or message.get("code")
                break
            if conn.close_code is not None:
                continue  # closing: what still arrives is not processed
            text = message.get("text")
            if text is None:
                problem = Problem(Error.INVALID_MESSAGE, "send UTF-8 JSON text frames")
                conn.send(error_frame(problem))
                continue
            await session.handle(text)
    except WebSocketDisconnect as exc:
        conn.session.close_code = conn.session.close_code or exc.code
    except Exception:
        log.exception("connection %s failed", conn.id)
    finally:
        await session.close()
