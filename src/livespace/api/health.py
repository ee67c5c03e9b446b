"""Health, readiness, metrics, and who is online."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from livespace.api.deps import MemberOf, NodeDep
from livespace.times import now_iso

router = APIRouter(tags=["health"])
STARTED = time.time()
READY_TIMEOUT_S = 2.0


@router.get("/ws/health", summary="Liveness and this node's load (no auth)")
async def health(node: NodeDep) -> dict[str, Any]:
    return {
        "status": "healthy",
        "service": "websocket",
        "total_workspaces": node.hub.active_rooms,
        "total_connections": node.hub.connections,
        "note_documents": len(node.notes.rooms),  # open here: a client of each on this node
        "note_clients": node.notes.clients,
        "timestamp": now_iso(),
        "node": node.settings.node_id,
        "uptime_s": round(time.time() - STARTED, 1),
        "draining": node.draining,
    }


@router.get("/ws/ready", summary="Ready when the store answers and the node is not draining")
async def ready(node: NodeDep) -> Response:
    """503 while the store cannot be reached (mutations get ``unavailable``) or the node
    drains. The broker's state is reported but does not make the node unready: without
    Redis a node still commits and delivers (docs/scaling.md), and every node shares the
    same Redis, so failing them all would turn a degradation into an outage."""
    checks: dict[str, Any] = {"store": False, "draining": node.draining,
                              "broker": bool(getattr(node.broker, "connected", True))}
    try:
        checks["store"] = await asyncio.wait_for(node.store.ping(), READY_TIMEOUT_S)
    except Exception as exc:  # an outage is the answer, not an error
        checks["store_error"] = type(exc).__name__
    ok = bool(checks["store"]) and not node.draining
    return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


@router.get("/ws/workspace/{workspace_id}/users", summary="Online users (members only)")
async def online_users(m: MemberOf, node: NodeDep, after: str | None = None,
                       limit: int | None = Query(None, ge=1, le=10_000)) -> dict[str, Any]:
    """Every online user by id; with ``limit`` a page of them (the next after
    ``after``, ``has_more`` when there are more): the rest of a truncated welcome."""
    workspace_id = m.workspace_id
    users = await node.presence.online(workspace_id)
    count = len(users)
    if after is not None:
        users = [u for u in users if str(u["id"]) > after]
    more = limit is not None and len(users) > limit
    if limit is not None:
        users = users[:limit]
    return {"workspace_id": workspace_id, "users": users, "count": count, "has_more": more}


@router.get("/metrics", summary="Prometheus text format", response_class=PlainTextResponse)
async def metrics(node: NodeDep) -> Response:
    await node.sample_metrics()
    body, content_type = node.metrics.render()
    return Response(body, media_type=content_type)
