"""Baseline 1: the FastAPI tutorial's ConnectionManager, on uvicorn (its defaults).

A list of sockets per workspace and ``for c in active: await c.send_text(msg)``: the
pattern most Python real-time apps start from. It speaks just enough of livespace's
protocol for ``livespace bench`` (fanout, idle, connect): a ``welcome`` frame on connect,
and any frame it receives relayed as-is to the workspace's other connections. When
``JWT_SECRET`` is set the ``token`` query parameter is verified (HS256) like livespace
does, so handshakes are compared like for like; a bad token closes with 4001.

Run: python bench/baselines/fastapi_manager.py --port 8101
"""

from __future__ import annotations

import argparse
import json
import os
import uuid

import jwt
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

SECRET = os.environ.get("JWT_SECRET")


class ConnectionManager:
    def __init__(self) -> None:
        self.active_connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active_connections.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        self.active_connections.remove(websocket)

    async def broadcast(self, message: str, sender: WebSocket) -> None:
        for connection in self.active_connections:
            if connection is not sender:
                await connection.send_text(message)


app = FastAPI()
managers: dict[str, ConnectionManager] = {}


@app.get("/ws/health")
async def health() -> dict[str, object]:
    return {
        "status": "healthy",
        "service": "websocket",
        "total_workspaces": len(managers),
        "total_connections": sum(len(m.active_connections) for m in managers.values()),
    }


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


@app.websocket("/ws/workspace/{workspace_id}")
async def workspace_socket(websocket: WebSocket, workspace_id: str) -> None:
    user_id = _user_id(websocket.query_params.get("token"))
    if user_id is None:
        await websocket.accept()
        await websocket.close(code=4001)
        return
    manager = managers.setdefault(workspace_id, ConnectionManager())
    await manager.connect(websocket)
    await websocket.send_text(welcome(workspace_id, user_id))
    try:
        while True:
            data = await websocket.receive_text()
            await manager.broadcast(data, websocket)
    except WebSocketDisconnect:
        manager.disconnect(websocket)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
