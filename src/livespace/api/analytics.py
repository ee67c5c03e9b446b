"""Session analytics: who was connected, how long, how much they sent and received."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from livespace.api.deps import Caller, NodeDep

router = APIRouter(prefix="/api/workspaces/{workspace_id}", tags=["analytics"])


@router.get("/stats", summary="Events by type and day, sessions, delivery rate")
async def stats(workspace_id: str, node: NodeDep, me: Caller) -> dict[str, Any]:
    """Members see their own session figures; owners and admins see everyone's."""
    role = await node.service.role(workspace_id, me.user_id)
    user = None if role in ("owner", "admin") else me.user_id
    figures = await node.store.stats(workspace_id, user_id=user)
    return {"workspace_id": workspace_id, "scope": "all" if user is None else "mine", **figures,
            "live": {"connections_on_node": len(node.hub.rooms[workspace_id].conns)
                     if workspace_id in node.hub.rooms else 0}}


@router.get("/sessions", summary="Sessions (active=true: open ones only)")
async def sessions(workspace_id: str, node: NodeDep, me: Caller,
                   active: bool | None = None) -> dict[str, Any]:
    role = await node.service.role(workspace_id, me.user_id)
    user = None if role in ("owner", "admin") else me.user_id
    rows = await node.store.sessions(workspace_id, active=active, user_id=user)
    return {"sessions": [s.to_json() for s in rows], "count": len(rows)}
