"""Baseline 2: the ``websockets`` library's ``broadcast()`` on uvloop.

A set of connections per workspace; a received frame goes out with
``websockets.broadcast(others, message)``, which writes to each connection without
awaiting (and skips connections whose buffer is full). It speaks just enough of
livespace's protocol for ``livespace bench`` (fanout, idle, connect): a ``welcome`` frame
on connect, any received frame relayed as-is to the workspace's other connections, and
``GET /ws/health``. When ``JWT_SECRET`` is set the ``token`` query parameter is verified
(HS256); a bad token closes with 4001. When ``BENCH_MEMBERS_DB`` names a SQLite file
with a ``members (workspace_id, user_id, role)`` table, each handshake also looks its
membership up there (one indexed read, as a hand-written server would), and a
non-member is closed with 4003: the same JWT + membership work as livespace's handshake.

Run: python bench/baselines/websockets_broadcast.py --port 8102
"""

from __future__ import annotations

import argparse
import asyncio
import http
import json
import os
import sqlite3
import uuid
from urllib.parse import parse_qs, urlsplit

import jwt
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

SECRET = os.environ.get("JWT_SECRET")
MEMBERS_DB = os.environ.get("BENCH_MEMBERS_DB")
members = sqlite3.connect(MEMBERS_DB, check_same_thread=False) if MEMBERS_DB else None
rooms: dict[str, set[ServerConnection]] = {}


def is_member(workspace_id: str, user_id: str) -> bool:
    if members is None:
        return True
    row = members.execute("SELECT role FROM members WHERE workspace_id = ? AND user_id = ?",
                          (workspace_id, user_id)).fetchone()
    return row is not None


def welcome(workspace_id: str, user_id: str) -> str:
    return json.dumps(
        {
            "type": "welcome",
            "session_id": uuid.uuid4().hex,
            "workspace_id": workspace_id,
            "user": {"id": user_id},
            "seq": 0,
            "presence": [],
            "heartbeat_s": 0,
        }
    )


def _user_id(token: str | None) -> str | None:
    if SECRET is None:
        return "anonymous"
    try:
        claims = jwt.decode(token or "", SECRET, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return None
    user = claims.get("user_id") or claims.get("sub") or claims.get("id")
    return str(user) if user else None


def health(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/ws/health":
        total = sum(len(room) for room in rooms.values())
        return connection.respond(http.HTTPStatus.OK, f"healthy {len(rooms)} {total}\n")
    return None


async def handler(websocket: ServerConnection) -> None:
    url = urlsplit(websocket.request.path if websocket.request else "/")
    parts = url.path.strip("/").split("/")
    if len(parts) != 3 or parts[:2] != ["ws", "workspace"]:
        await websocket.close(code=4003)
        return
    workspace_id = parts[2]
    user_id = _user_id(parse_qs(url.query).get("token", [None])[0])
    if user_id is None:
        await websocket.close(code=4001)
        return
    if not is_member(workspace_id, user_id):
        await websocket.close(code=4003)
        return
    room = rooms.setdefault(workspace_id, set())
    room.add(websocket)
    try:
        await websocket.send(welcome(workspace_id, user_id))
        async for message in websocket:
            broadcast([c for c in room if c is not websocket], message)
    finally:
        room.discard(websocket)


async def run(host: str, port: int) -> None:
    async with serve(handler, host, port, process_request=health, compression=None) as server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(run(args.host, args.port))
    else:
        uvloop.run(run(args.host, args.port))


if __name__ == "__main__":
    main()
