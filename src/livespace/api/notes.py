"""``GET /ws/workspace/{id}/notes/{note_id}/doc``: a note's shared document, y-websocket.

Also served without ``/doc``: ``new WebsocketProvider(base + "/ws/workspace/" + id +
"/notes", note_id, doc, {params: {token}})`` connects to ``<serverUrl>/<room name>``.
An ordinary Starlette WebSocket route: authentication and membership as on the workspace
socket (the same token sources, 4001 / 4003 / 4008, closed right after the handshake
before any data frame), then :class:`~livespace.notes.peer.DocPeer` for the messages.
A note that does not exist, or belongs to another workspace, is 4003 like a workspace
one is not a member of.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from livespace.auth import AuthError, token_from, wants_subprotocol
from livespace.codes import Close, Problem
from livespace.node import Node
from livespace.notes.peer import DocPeer
from livespace.validation import entity_id

log = logging.getLogger(__name__)
audit = logging.getLogger("livespace.audit")
router = APIRouter()


@router.websocket("/ws/workspace/{workspace_id}/notes/{note_id}/doc")
@router.websocket("/ws/workspace/{workspace_id}/notes/{note_id}")
async def note_socket(websocket: WebSocket, workspace_id: str, note_id: str) -> None:
    node: Node = websocket.app.state.node
    settings = node.settings
    origin = websocket.headers.get("origin")
    client = websocket.client.host if websocket.client else "-"
    if settings.allowed_origins and origin is not None and origin not in settings.allowed_origins:
        audit.info("note socket refused origin=%.100r client=%s status=403", origin, client)
        await websocket.close(Close.FORBIDDEN)  # before accept: HTTP 403
        return
    subprotocol = wants_subprotocol(websocket.headers)
    user_id = "-"

    async def refuse(code: int, reason: str) -> None:
        audit.info("note socket refused user=%s workspace=%.64r note=%.64r client=%s code=%d "
                   "reason=%r", user_id, workspace_id, note_id, client, code, reason)
        await websocket.accept(subprotocol=subprotocol)
        await websocket.close(code, reason)

    if node.draining:
        return await refuse(Close.RESTARTING, "server restarting")
    token = token_from(websocket.headers, websocket.query_params)
    if token is None:
        return await refuse(Close.UNAUTHORIZED, "missing token")
    if node.throttled(client):
        return await refuse(Close.POLICY, "too many failed handshakes from this address")
    try:
        principal = await node.verifier.verify(token)
    except AuthError as err:
        node.auth_failed(client)
        return await refuse(Close.UNAUTHORIZED, f"unauthorized: {err}"[:120])
    user_id = principal.user_id
    if await node.limits.take("http", user_id, time.monotonic()):
        return await refuse(Close.POLICY, "too many connection attempts")
    try:
        role = await node.service.role(workspace_id, user_id)
        entity_id(note_id, "note_id")
    except Problem:
        return await refuse(Close.FORBIDDEN, "forbidden")
    refused = await node.admit(user_id, workspace_id)
    if refused is not None:
        return await refuse(Close.POLICY, refused)
    try:
        await _serve(websocket, node, workspace_id, note_id,
                     DocPeer(principal, role, node.notes.limits, settings.send_queue_bytes),
                     subprotocol, client)
    finally:
        await node.release(user_id, workspace_id)


async def _serve(websocket: WebSocket, node: Node, workspace_id: str, note_id: str,
                 peer: DocPeer, subprotocol: str | None, client: str) -> None:
    await websocket.accept(subprotocol=subprotocol)
    try:
        room = await node.notes.join(workspace_id, note_id, peer)
    except Exception as err:  # the store or the broker cannot be reached: try again
        log.warning("note %.64r could not be opened: %s", note_id, err)
        await websocket.close(Close.INTERNAL, "note unavailable: reconnect")
        return
    if room is None:
        audit.info("note socket refused user=%s workspace=%s note=%.64r client=%s code=4003 "
                   "reason='no such note'", peer.user_id, workspace_id, note_id, client)
        await websocket.close(Close.FORBIDDEN, "no such note")
        return
    audit.info("note socket opened peer=%s user=%s workspace=%s note=%s role=%s client=%s",
               peer.id, peer.user_id, workspace_id, note_id, peer.role, client)
    opened = time.monotonic()
    writer = asyncio.get_running_loop().create_task(peer.write_to(websocket))
    try:
        while not writer.done():
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                peer.gone(message.get("code"))
                break
            data = message.get("bytes")
            if data is None:
                peer.close(Close.UNSUPPORTED, "binary y-websocket messages only")
            else:
                peer.handle(room, data)
    except WebSocketDisconnect as exc:
        peer.gone(exc.code)
    finally:
        peer.gone(None)
        await node.notes.leave(room, peer)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer, timeout=node.settings.close_grace_s)
        audit.info("note socket closed peer=%s user=%s note=%s code=%s in=%d ignored=%d "
                   "seconds=%.1f", peer.id, peer.user_id, note_id, peer.close_code,
                   peer.messages_in, peer.ignored_updates, time.monotonic() - opened)
